/**
 * The datapath evidence of native routing on Cilium 1.14 or later, written out independently of
 * infra/cilium/values for the tests that check `ciliumDatapath`.
 */
import type { CiliumDatapath } from "../../infra/cilium/values";

/**
 * Native routing on 1.14 or later over the default 1500-byte network: no tunnel device, no route MTU
 * overhead, the ConfigMap's routing entries for `cidr`, and `entries` beside them.
 */
export function modernNativeDatapath(cidr: string, entries: Readonly<Record<string, string>>): CiliumDatapath {
  return {
    routingMode: "native",
    tunnelDevice: null,
    routeMtuOverhead: 0,
    networkMtu: 1500,
    configMap: {
      "routing-mode": "native",
      "auto-direct-node-routes": "true",
      "ipv4-native-routing-cidr": cidr,
      ...entries,
    },
  };
}
