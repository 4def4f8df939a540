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
   * The network's MTU (default 1500, the article's underlay; 576-9000): libvirt gives it to the
   * bridge and to every guest's tap device, passes it to a virtio NIC as `host_mtu` (the guest driver
   * starts at that MTU, VIRTIO_NET_F_MTU), and dnsmasq advertises it by DHCP. Changing it replaces
   * the network, and with it every VM on it: libvirt cannot change a network's MTU in place
   * (`virsh net-update` changes DHCP hosts, DNS and port groups, not the MTU), and a running guest's `host_mtu` is fixed when qemu
   * starts. The engine replaces the Domains because their `networkName` comes from this resource.
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
