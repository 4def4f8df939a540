// Pure libvirt XML builders and parsers: exact expected documents, parsing of what virsh prints
// (single quotes, netmask form, KiB memory), the leases table, and virt-xml-validate (libvirt's own
// RelaxNG schemas) over every rendered document.
import test from "ava";
import { spawnSync } from "node:child_process";

import {
  dhcpHostXml,
  domainXml,
  netmaskToPrefix,
  networkXml,
  parseDomainXml,
  parseLeases,
  parseNetworkXml,
  parsePoolTargetPath,
  type DomainSpec,
  type NetworkSpec,
} from "../../infra/libvirt/xml";
import { tempFile } from "./support";

const NETWORK: NetworkSpec = {
  name: "cilium-lab-vxlan",
  bridge: "cl-vxlan-1a2b",
  gateway: "192.168.150.1",
  prefix: 24,
  mtu: 1500,
  stack: "vxlan",
  hosts: [
    { mac: "52:54:00:1a:2b:01", ip: "192.168.150.11", hostname: "node-1" },
    { mac: "52:54:00:1a:2b:02", ip: "192.168.150.12", hostname: "node-2" },
  ],
};

const DOMAIN: DomainSpec = {
  name: "cilium-lab-vxlan-node-1",
  stack: "vxlan",
  vcpus: 2,
  memoryMiB: 4096,
  accelerator: "qemu",
  diskPath: "/var/lib/libvirt/cilium-lab/vxlan/node-1.qcow2",
  seedPath: "/var/lib/libvirt/cilium-lab/vxlan/node-1-seed-0123456789ab.iso",
  networkName: "cilium-lab-vxlan",
  mac: "52:54:00:1a:2b:01",
  consoleLogPath: "/var/lib/libvirt/cilium-lab/vxlan/node-1-console.log",
};

const domainDoc = (cpu: string, type: string): string => `<domain type="${type}">
  <name>cilium-lab-vxlan-node-1</name>
  <title>cilium-lab vxlan: cilium-lab-vxlan-node-1</title>
  <description>Created by the cilium-lab Pulumi project (stack vxlan). Leftovers after a crash: scripts/lab-clean.sh --stack vxlan</description>
  <metadata>
    <lab:owner xmlns:lab="https://cilium-lab.dev/libvirt/1" project="cilium-lab" stack="vxlan"/>
  </metadata>
  <memory unit="MiB">4096</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch="x86_64">hvm</type>
    <boot dev="hd"/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
${cpu}
  <clock offset="utc"/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2"/>
      <source file="/var/lib/libvirt/cilium-lab/vxlan/node-1.qcow2"/>
      <target dev="vda" bus="virtio"/>
    </disk>
    <disk type="file" device="disk">
      <driver name="qemu" type="raw"/>
      <source file="/var/lib/libvirt/cilium-lab/vxlan/node-1-seed-0123456789ab.iso"/>
      <target dev="vdb" bus="virtio"/>
      <readonly/>
    </disk>
    <interface type="network">
      <mac address="52:54:00:1a:2b:01"/>
      <source network="cilium-lab-vxlan"/>
      <model type="virtio"/>
    </interface>
    <serial type="file">
      <source path="/var/lib/libvirt/cilium-lab/vxlan/node-1-console.log" append="off"/>
      <target port="0"/>
    </serial>
    <console type="file">
      <source path="/var/lib/libvirt/cilium-lab/vxlan/node-1-console.log" append="off"/>
      <target type="serial" port="0"/>
    </console>
    <controller type="usb" model="none"/>
    <memballoon model="none"/>
    <rng model="virtio">
      <backend model="random">/dev/urandom</backend>
    </rng>
  </devices>
</domain>`;

test("networkXml renders NAT, our bridge, MTU 1500, DNS on the gateway, reservations only and the owner stamp", (t) => {
  t.is(
    networkXml(NETWORK),
    `<network>
  <name>cilium-lab-vxlan</name>
  <metadata>
    <lab:owner xmlns:lab="https://cilium-lab.dev/libvirt/1" project="cilium-lab" stack="vxlan"/>
  </metadata>
  <forward mode="nat"/>
  <bridge name="cl-vxlan-1a2b" stp="on" delay="0"/>
  <mtu size="1500"/>
  <dns enable="yes"/>
  <ip address="192.168.150.1" prefix="24">
    <dhcp>
      <host mac="52:54:00:1a:2b:01" name="node-1" ip="192.168.150.11"/>
      <host mac="52:54:00:1a:2b:02" name="node-2" ip="192.168.150.12"/>
    </dhcp>
  </ip>
</network>`,
  );
});

test("networkXml with networkMtu 9000 writes <mtu size='9000'/>, the one changed line, and parses back as 9000", (t) => {
  const jumbo = networkXml({ ...NETWORK, mtu: 9000 });
  const diff = jumbo.split("\n").filter((line, i) => line !== networkXml(NETWORK).split("\n")[i]);
  t.deepEqual(diff, ['  <mtu size="9000"/>']);
  t.is(parseNetworkXml(jumbo).mtu, 9000);
  t.is(parseNetworkXml(networkXml(NETWORK)).mtu, 1500);
});

test("domainXml with accelerator qemu is TCG with the qemu64 CPU model", (t) => {
  t.is(
    domainXml(DOMAIN),
    domainDoc(`  <cpu mode="custom" match="exact">\n    <model fallback="allow">qemu64</model>\n  </cpu>`, "qemu"),
  );
});

test("domainXml with accelerator kvm passes the host CPU through", (t) => {
  t.is(domainXml({ ...DOMAIN, accelerator: "kvm" }), domainDoc(`  <cpu mode="host-passthrough"/>`, "kvm"));
});

test("domainXml with bridgeName attaches the NIC to that host bridge (Bridge to LAN), the one changed element, and parses back", (t) => {
  const bridged = domainXml({ ...DOMAIN, networkName: "", bridgeName: "clbr0" });
  const nat = domainXml(DOMAIN).split("\n");
  const changed = bridged.split("\n").filter((line, i) => line !== nat[i]);
  t.deepEqual(changed, ['    <interface type="bridge">', '      <source bridge="clbr0"/>']);
  t.deepEqual(parseDomainXml(bridged).interfaces, [
    { type: "bridge", network: undefined, bridge: "clbr0", mac: "52:54:00:1a:2b:01" },
  ]);
});

test("names with XML specials are escaped, not injected", (t) => {
  const xml = domainXml({ ...DOMAIN, name: "a<b>&c", consoleLogPath: `/x/"q".log` });
  t.true(xml.includes("<name>a&lt;b&gt;&amp;c</name>"));
  t.true(xml.includes(`path="/x/&quot;q&quot;.log"`));
  t.is(parseDomainXml(xml).name, "a<b>&c");
  t.is(parseDomainXml(xml).serialFile, `/x/"q".log`);
});

test("dhcpHostXml is the one-element argument of net-update", (t) => {
  t.is(
    dhcpHostXml({ mac: "52:54:00:1a:2b:03", ip: "192.168.150.13", hostname: "node-3" }),
    '<host mac="52:54:00:1a:2b:03" name="node-3" ip="192.168.150.13"/>',
  );
});

for (const [label, kind, xml] of [
  ["network", "network", networkXml(NETWORK)],
  ["network (MTU 9000)", "network", networkXml({ ...NETWORK, mtu: 9000 })],
  ["domain (qemu)", "domain", domainXml(DOMAIN)],
  ["domain (kvm)", "domain", domainXml({ ...DOMAIN, accelerator: "kvm" })],
  ["domain (bridge)", "domain", domainXml({ ...DOMAIN, networkName: "", bridgeName: "clbr0" })],
] as const) {
  test(`virt-xml-validate accepts the rendered ${label} XML`, (t) => {
    const r = spawnSync("virt-xml-validate", [tempFile("x.xml", xml), kind], { encoding: "utf8" });
    if (r.error) {
      return t.fail(`virt-xml-validate not runnable (${r.error.message}): install libvirt-clients and libxml2-utils`);
    }
    t.is(r.status, 0, r.stderr + r.stdout);
    t.regex(r.stdout + r.stderr, /validates/);
  });
}

test("parseNetworkXml reads what virsh prints (single quotes, netmask form, uuid, extra elements)", (t) => {
  const dumped = `<network connections='2'>
  <name>cilium-lab-vxlan</name>
  <uuid>98f0ecf1-feb4-4331-84bc-50af5a1d4796</uuid>
  <metadata>
    <lab:owner xmlns:lab="https://cilium-lab.dev/libvirt/1" project="cilium-lab" stack="vxlan"/>
  </metadata>
  <forward mode='nat'>
    <nat>
      <port start='1024' end='65535'/>
    </nat>
  </forward>
  <bridge name='cl-vxlan-1a2b' stp='on' delay='0'/>
  <mtu size='1500'/>
  <mac address='52:54:00:92:ec:70'/>
  <dns enable='yes'/>
  <ip address='192.168.150.1' netmask='255.255.255.0'>
    <dhcp>
      <host mac='52:54:00:1A:2B:01' name='node-1' ip='192.168.150.11'/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='fd00::1' prefix='64'/>
</network>`;
  t.deepEqual(parseNetworkXml(dumped), {
    name: "cilium-lab-vxlan",
    uuid: "98f0ecf1-feb4-4331-84bc-50af5a1d4796",
    owner: { project: "cilium-lab", stack: "vxlan" },
    bridge: "cl-vxlan-1a2b",
    forwardMode: "nat",
    mtu: 1500,
    ips: [{ address: "192.168.150.1", prefix: 24 }],
    hosts: [{ mac: "52:54:00:1a:2b:01", ip: "192.168.150.11", hostname: "node-1" }],
    dhcp: true,
  });
});

test("an owner element in another namespace, or none, is not ours", (t) => {
  const other = `<network><name>n</name><metadata><x:owner xmlns:x="https://example.com/1" project="cilium-lab" stack="s"/></metadata></network>`;
  t.is(parseNetworkXml(other).owner, undefined);
  t.like(parseNetworkXml("<network><name>default</name></network>"), {
    owner: undefined,
    forwardMode: undefined,
    dhcp: false,
    ips: [],
  });
});

test("parseDomainXml converts memory units and finds disks, NIC and the serial file", (t) => {
  const dumped = `<domain type='qemu' id='16'>
  <name>cl-t-x</name>
  <uuid>5496e984-f04f-4e24-b8b5-a54cc4c83283</uuid>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <devices>
    <disk type='file' device='disk'><source file='/p/a.qcow2' index='2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><source file='/p/s.iso'/><target dev='vdb' bus='virtio'/><readonly/></disk>
    <interface type='network'><mac address='52:54:00:C1:C1:01'/><source network='cl-t-n' portid='x' bridge='b'/></interface>
    <serial type='file'><source path='/p/c.log' append='off'/><target type='isa-serial' port='0'/></serial>
  </devices>
</domain>`;
  t.deepEqual(parseDomainXml(dumped), {
    name: "cl-t-x",
    uuid: "5496e984-f04f-4e24-b8b5-a54cc4c83283",
    type: "qemu",
    owner: undefined,
    vcpus: 1,
    memoryMiB: 1024,
    disks: [
      { device: "disk", file: "/p/a.qcow2", target: "vda", readonly: false },
      { device: "disk", file: "/p/s.iso", target: "vdb", readonly: true },
    ],
    interfaces: [{ type: "network", network: "cl-t-n", bridge: undefined, mac: "52:54:00:c1:c1:01" }],
    serialFile: "/p/c.log",
  });
});

test("parsers reject documents of the wrong kind or broken XML with a clear message", (t) => {
  t.throws(() => parseNetworkXml("<domain/>"), { message: "expected a <network> document from libvirt, got <domain>" });
  t.throws(() => parseDomainXml("<domain"), { message: /^cannot parse libvirt domain XML: / });
  t.is(
    parsePoolTargetPath("<pool type='dir'><name>p</name><target><path>/var/lib/x</path></target></pool>"),
    "/var/lib/x",
  );
});

for (const [mask, prefix] of [
  ["255.255.255.0", 24],
  ["255.255.0.0", 16],
  ["255.255.255.252", 30],
  ["255.255.255.255", 32],
  ["0.0.0.0", 0],
  ["255.0.255.0", undefined],
  ["255.255.255", undefined],
] as const) {
  test(`netmask ${mask} is prefix ${String(prefix)}`, (t) => {
    t.is(netmaskToPrefix(mask), prefix);
  });
}

test("parseLeases reads virsh net-dhcp-leases' table (libvirt 9.0 layout)", (t) => {
  const table = ` Expiry Time           MAC address         Protocol   IP address          Hostname   Client ID or DUID
------------------------------------------------------------------------------------------------------------
 2026-11-24 11:33:18   52:54:00:c1:c1:01   ipv4       192.168.193.11/24   node-1     ff:b5:5e:67:ff:00:02:00:00:ab:11:1b:2d:8f:3c:55:6a:a3:44
 2026-11-24 11:35:02   52:54:00:c1:c1:02   ipv4       192.168.193.12/24   -          01:52:54:00:c1:c1:02
 2026-11-24 11:35:02   52:54:00:c1:c1:03   ipv6       fd00::12/64         node-3     -

`;
  t.deepEqual(parseLeases(table), [
    { expiry: "2026-11-24 11:33:18", mac: "52:54:00:c1:c1:01", ip: "192.168.193.11", hostname: "node-1" },
    { expiry: "2026-11-24 11:35:02", mac: "52:54:00:c1:c1:02", ip: "192.168.193.12", hostname: "-" },
  ]);
  t.deepEqual(
    parseLeases(" Expiry Time   MAC address   Protocol   IP address   Hostname   Client ID or DUID\n-----\n\n"),
    [],
  );
});
