/**
 * A child-process scenario for verify-refused.mock.test.ts: the Verification under mocks on a lab
 * whose nodes run VXLAN while native routing was requested. A refused datapath fails the program
 * the way `pulumi up` reports it (an unhandled ResourceError), which would fail any ava test file
 * that hosted it, so it runs here and prints one JSON line: what was registered, every distinct
 * error, and whether any throughput ever resolved.
 */
import * as pulumi from "@pulumi/pulumi";

import { build, stackConfig } from "./mock-program";
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

async function main(): Promise<void> {
  const log = await loopbackIperf3(1);
  let throughput = false;
  // argv[2]: `wrong-mode` (nodes run VXLAN, native requested) or `unreadable` (node-3's collector
  // prints an error instead of its document, vxlan requested and running).
  const unreadable = process.argv[2] === "unreadable";
  const b = unreadable
    ? await build(
        "vxlan",
        stackConfig("vxlan"),
        {
          nodesRun: "vxlan",
          configMap: { tunnel: "vxlan", "kube-proxy-replacement": "disabled" },
          iperf3Log: log,
          brokenNode: "node-3",
          brokenOutput: "bash: line 1: ip: command not found",
        },
        false,
      )
    : await build(
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
  b.verification.throughput.apply((v) => {
    throughput = true;
    return v;
  });
  let datapath: unknown = null;
  b.verification.datapath.apply((d) => {
    datapath = { verdict: d.verdict, requested: d.requested, observed: d.observed };
    return d;
  });
  await new Promise((r) => setTimeout(r, 1000));
  process.stdout.write(
    `${JSON.stringify({ registered: b.registrations.map((r) => `${r.type} ${r.name}`), errors: [...new Set(errors.values())], throughput, datapath })}\n`,
  );
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ fatal: String(err) })}\n`);
  process.exit(1);
});
