/** The inputs and state of a {@link Network}. */
import type * as pulumi from "@pulumi/pulumi";

import type { OwnedObjectArgs } from "../owned";
import type { DhcpHost } from "../xml";

/** A DHCP reservation. */
export interface NetworkHostArgs {
  /** The node NIC's MAC, `52:54:00:…` (lower case). */
  readonly mac: pulumi.Input<string>;
  /** The address the node always gets; inside `cidr`, not the gateway. */
  readonly ip: pulumi.Input<string>;
  /** Hostname dnsmasq registers for the address (`node-1`). */
  readonly hostname: pulumi.Input<string>;
}

/** Inputs of {@link Network}; changing `uri` or `stack` replaces the network. */
export interface NetworkArgs extends OwnedObjectArgs {
  /** libvirt network name, unique per host (`planLab().networkName`). Changing it replaces the network. */
  readonly networkName: pulumi.Input<string>;
  /** Linux bridge, at most 15 characters (`planLab().bridgeName`). Changing it replaces the network. */
  readonly bridgeName: pulumi.Input<string>;
  /** The network, e.g. `192.168.150.0/24` (cilium-lab:networkCidr). Must not overlap a host route or another libvirt network. */
  readonly cidr: pulumi.Input<string>;
  /** The bridge's address: the guests' gateway and DNS server (`planLab().gateway`). */
  readonly gateway: pulumi.Input<string>;
  /** DHCP reservations, one per node. Only these MACs get a lease. Changed in place. */
  readonly hosts: pulumi.Input<pulumi.Input<NetworkHostArgs>[]>;
  /**
   * The network's MTU (default 1500, the article's underlay; 576-9000). libvirt gives it to the
   * bridge and to every guest's tap device (https://libvirt.org/formatnetwork.html "mtu"), and its
   * dnsmasq advertises it by DHCP (option 26, `dhcp-option=option:mtu,N`): the guests' NICs take it
   * from their lease (netplan `dhcp4-overrides` `use-mtu`, default true, on the Ubuntu nodes;
   * dhclient on the Debian test image). libvirt 9.0 does not pass it to virtio-net as `host_mtu`
   * (the guest NIC's max_mtu stays 65535): the real test test/nodes/network-mtu.vm.test.ts shows
   * both. Changing it replaces the network and every VM on it: libvirt cannot change a network's
   * MTU in place (`virsh net-update` changes DHCP hosts, DNS and port groups, not the MTU), and a
   * guest's tap device gets its MTU when the VM starts. The engine replaces the Domains because
   * their `networkName` comes from this resource.
   */
  readonly mtu?: pulumi.Input<number>;
}

/** Plain inputs as the provider receives them. */
export type NetworkInputs = pulumi.Unwrap<NetworkArgs>;

/** State of a network, as read back from libvirt. */
export interface NetworkOutputs extends Omit<NetworkInputs, "hosts"> {
  readonly uuid: string;
  readonly hosts: readonly DhcpHost[];
  readonly mtu: number;
  /** Whether the network is started; a network stopped by hand is started again by the next `up`. */
  readonly active: boolean;
}
