/**
 * `Network`, the stack's libvirt NAT network: its inputs (types.ts), the pure input check
 * (check.ts) and the provider with its resource class (provider.ts).
 */
export type { NetworkArgs, NetworkHostArgs, NetworkInputs, NetworkOutputs } from "./types";
export { NETWORK_REPLACE_KEYS, Network, listHostNetworks, networkProvider } from "./provider";
