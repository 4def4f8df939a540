/**
 * planLab's hosts: each node's libvirt URI (libvirtUri, or nodeHosts round-robin), the distinct
 * hosts in node order, and bridge mode's gateway and DNS servers; NAT plans keep every other value.
 */
import test from "ava";

import { parseLabConfig } from "../../infra/config";
import { planLab } from "../../infra/plan";

const BRIDGE = { networkMode: "bridge", bridge: "br0", gateway: "192.0.2.1", networkCidr: "192.0.2.0/24" };
const H2 = "qemu+ssh://lab@127.0.0.1:2222/system";

test("a NAT plan puts every node on libvirtUri, with the network's first address as gateway and DNS", (t) => {
  const plan = planLab(parseLabConfig({}).config, "vxlan");
  t.deepEqual(
    plan.nodes.map((n) => [n.name, n.ip, n.hostUri]),
    [
      ["node-1", "192.168.150.11", "qemu:///system"],
      ["node-2", "192.168.150.12", "qemu:///system"],
      ["node-3", "192.168.150.13", "qemu:///system"],
    ],
  );
  t.deepEqual(plan.hosts, ["qemu:///system"]);
  t.is(plan.gateway, "192.168.150.1");
  t.deepEqual(plan.dns, ["192.168.150.1"]);
  t.is(plan.networkName, "cilium-lab-vxlan");
});

test("a plan from networkCidr and nodeCount alone takes the default URI", (t) => {
  const plan = planLab({ networkCidr: "10.10.0.0/24", nodeCount: 2 }, "s");
  t.deepEqual(
    plan.nodes.map((n) => n.hostUri),
    ["qemu:///system", "qemu:///system"],
  );
  t.deepEqual(plan.hosts, ["qemu:///system"]);
});

test("a remote libvirtUri hosts every node", (t) => {
  const plan = planLab(parseLabConfig({ ...BRIDGE, libvirtUri: H2 }).config, "remote");
  t.deepEqual(plan.hosts, [H2]);
  t.true(plan.nodes.every((n) => n.hostUri === H2));
});

test("nodeHosts is applied round-robin and hosts lists each URI once, in node order", (t) => {
  const config = parseLabConfig({ ...BRIDGE, nodeCount: "5", nodeHosts: `${H2},qemu:///system` }).config;
  const plan = planLab(config, "multi");
  t.deepEqual(
    plan.nodes.map((n) => n.hostUri),
    [H2, "qemu:///system", H2, "qemu:///system", H2],
  );
  t.deepEqual(plan.hosts, [H2, "qemu:///system"]);
});

test("bridge mode takes the configured gateway, and dns or else the gateway", (t) => {
  const plain = planLab(parseLabConfig({ ...BRIDGE, gateway: "192.0.2.254" }).config, "b");
  t.is(plain.gateway, "192.0.2.254");
  t.deepEqual(plain.dns, ["192.0.2.254"]);
  t.is(plain.prefix, 24);
  t.deepEqual(
    plain.nodes.map((n) => n.ip),
    ["192.0.2.11", "192.0.2.12", "192.0.2.13"],
  );
  const withDns = planLab(parseLabConfig({ ...BRIDGE, dns: "9.9.9.9,1.1.1.1" }).config, "b");
  t.deepEqual(withDns.dns, ["9.9.9.9", "1.1.1.1"]);
});
