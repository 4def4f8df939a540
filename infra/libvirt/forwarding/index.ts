/**
 * Can the lab's nodes reach the internet through the host? Docker sets the iptables FORWARD policy
 * to DROP, UFW's default routed policy is DROP, firewalld rejects what no zone allows: on such a host
 * the VMs' forwarded packets vanish and k3s's download fails minutes into `up`. This module decides,
 * read-only and before anything exists, whether every netfilter `forward` hook would accept:
 * - a new TCP/443 and UDP/53 connection from node-1 (the CIDR's .11) in on the lab's bridge, and
 * - the replies (ESTABLISHED) out on the bridge,
 * once libvirt has added its own rules for the lab's network (it adds them when it starts the network).
 *
 * A packet passes only if every base chain on the forward hook accepts it (iptables-legacy's
 * FORWARD and each nftables `hook forward` chain: an accept in one table does not stop another from
 * dropping). Rules are read from `iptables-legacy-save`, `iptables-nft-save` (for the tables that
 * iptables-nft manages: `nft -j` shows its conntrack matches only as opaque `xt` expressions) and
 * `nft -j list ruleset` (every other table), then each probe packet is walked through the chains. A
 * match we cannot judge (ipsets, marks, physdev…) makes the verdict "unchecked", never "fail".
 *
 * gather.ts reads the host (read-only commands through an injectable {@link Runner}), evaluate.ts
 * judges; the netfilter model, its two parsers and the packet walk are in netfilter.ts, iptables.ts
 * and nft.ts. bridged.ts judges bridge mode's trap instead: frames bridged between the nodes passing
 * the forward hook when br_netfilter is loaded.
 */
// gather.ts exports the facts, the check row and the runner: all of it is public.
export * from "./gather";
export { checkForwarding, evaluateForwarding } from "./evaluate";
export { evaluateBridgedForwarding } from "./bridged";
