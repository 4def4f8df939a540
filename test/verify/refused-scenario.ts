/**
 * A child-process scenario for verify-refused.mock.test.ts: the Verification under mocks on a lab
 * that is not what was asked for — nodes running VXLAN while native routing was requested, an
 * unreadable collector, an agent without the requested bandwidth manager, or Hubble flows of the
 * other datapath. A refusal fails the program the way `pulumi up` reports it (an unhandled
 * ResourceError), which would fail any ava test file that hosted it, so it runs here and prints one
 * JSON line: what was registered, every distinct error, and whether any throughput or latency ever
 * resolved.
 */
import * as pulumi from "@pulumi/pulumi";

import { ciliumDatapath } from "../../infra/cilium/values";
import { VXLAN_CM, build, hubbleFlows, stackConfig, type Built } from "./mock-program";
import { loopbackIperf3 } from "./support";

const errors = new Map<unknown, string>();
const record = (err: unknown) => {
  errors.set(
    err,
    pulumi.ResourceError.isInstance(err)
      ? `ResourceError(hideStack=${String(err.hideStack)}): ${err.message}`
      : String(err),
  );
};
process.on("unhandledRejection", record);
process.on("uncaughtException", record);

/**
 * argv[2]: `wrong-mode` (nodes run VXLAN, native requested), `unreadable` (node-3's collector
 * prints an error instead of its document, vxlan requested and running), `feature-off`
 * (`bandwidthManager: on` rendered into cilium-config, the agents say `BandwidthManager: Disabled`)
 * or `flows-native` (vxlan proven, but Hubble's flows of the measured connection never touch the
 * overlay).
 */
async function scenario(name: string, log: string): Promise<Built> {
  if (name === "feature-off") {
    const config = stackConfig("vxlan", { bandwidthManager: "on" });
    const { configMap } = ciliumDatapath(config, config.ciliumVersion);
    return build("vxlan", config, { nodesRun: "vxlan", configMap: { ...configMap }, iperf3Log: log }, false);
  }
  if (name === "flows-native") {
    return build(
      "vxlan",
      stackConfig("vxlan"),
      { nodesRun: "vxlan", configMap: VXLAN_CM, iperf3Log: log, flows: hubbleFlows("native") },
      false,
    );
  }
  return name === "unreadable"
    ? build(
        "vxlan",
        stackConfig("vxlan"),
        {
          nodesRun: "vxlan",
          configMap: VXLAN_CM,
          iperf3Log: log,
          brokenNode: "node-3",
          brokenOutput: "bash: line 1: ip: command not found",
        },
        false,
      )
    : build(
        "vxlan",
        stackConfig("vxlan", { routingMode: "native", nativeRoutingCidr: "10.0.0.0/22" }),
        {
          nodesRun: "vxlan",
          configMap: {
            tunnel: "disabled",
            "auto-direct-node-routes": "true",
            "ipv4-native-routing-cidr": "10.0.0.0/22",
            "kube-proxy-replacement": "disabled",
          },
          iperf3Log: log,
        },
        false,
      );
}

async function main(): Promise<void> {
  const log = await loopbackIperf3(1);
  let throughput = false;
  let latency = false;
  const b = await scenario(process.argv[2] ?? "", log);
  b.verification.throughput.apply((v) => {
    throughput = true;
    return v;
  });
  b.verification.latency.apply((v) => {
    latency = true;
    return v;
  });
  // The exported datapath: with the verdict's refusal it resolves anyway, its flow proof null with the reason.
  let flowProofReason: string | null | undefined;
  b.verification.datapathReport.apply((d) => {
    flowProofReason = d.flowProofReason;
    return d;
  });
  let datapath: unknown = null;
  b.verification.datapath.apply((d) => {
    datapath = { verdict: d.verdict, requested: d.requested, observed: d.observed };
    return d;
  });
  await new Promise((r) => setTimeout(r, 1000));
  process.stdout.write(
    `${JSON.stringify({ registered: b.registrations.map((r) => `${r.type} ${r.name}`), errors: [...new Set(errors.values())], throughput, latency, datapath, flowProofReason })}\n`,
  );
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ fatal: String(err) })}\n`);
  process.exit(1);
});
