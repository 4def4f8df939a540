/**
 * The guest's duplicate-address check for bridge mode, where a node's static address comes from
 * the stack config and nothing on the LAN reserves it: before the node is trusted, it asks the LAN
 * whether anyone already holds its address, and on an answer it prints one line to the serial
 * console and powers off, so the boot fails with a named error (infra/libvirt/domain reads the
 * line from the console log) instead of two hosts fighting over one address.
 *
 * The check is an IPv4 Address Conflict Detection probe (RFC 5227 §2.1.1): an ARP request with
 * sender hardware address = our MAC, sender IP 0.0.0.0 (so no host updates its ARP cache from it)
 * and target IP = the address to claim. A host that holds the address answers (Linux
 * net/ipv4/arp.c `arp_process`: "Special case: IPv4 duplicate address detection packet (RFC2131)",
 * an ARP reply to the prober), and RFC 5227 §2.1.1 also counts any ARP packet *from* another host
 * whose sender IP is the address as a conflict. Timing deviates from RFC 5227's PROBE_NUM=3 probes
 * PROBE_MIN..PROBE_MAX (1–2 s) apart after up to PROBE_WAIT (1 s), about 7 s: the lab only looks
 * for an existing holder, not for a simultaneous claim, so three probes 0.5 s apart and 1 s of
 * listening after the last cost about 2 s per boot.
 *
 * It runs from cloud-init `bootcmd`, which runs on every boot, early, each list item executed
 * directly (canonical/cloud-init doc/examples/cloud-config-boot-cmds.txt: "bootcmd will run on every
 * boot"). By then the NIC is configured and up (cloud-init's network stage), so the probe leaves on
 * the real NIC, found by its MAC. A bridge with STP on holds a new port in listening/learning for
 * its forward delay, and a probe sent then is lost: the lab's bridges (and Linux's default) have
 * STP off. The guest needs python3, which cloud-init itself needs.
 */

/**
 * The start of the console line the guest prints on a conflict: `<marker> <address> answered by <mac>`
 * (read back by `findDadConflict`, infra/libvirt/domain/boot-errors.ts, beside the boot wait that uses it).
 */
export const DAD_CONFLICT_MARKER = "cilium-lab: duplicate address";

/** The exit status of the check (without `--poweroff`) when the address is taken. */
export const DAD_CONFLICT_STATUS = 3;

/** Where the guest prints the conflict line: the first serial port (the console log file) and the kernel console. */
export const DAD_CONSOLES: readonly string[] = ["/dev/ttyS0", "/dev/console"];

/**
 * The probe, as a python3 program: `python3 -c DAD_SCRIPT [--poweroff] <address> <mac> [output…]`.
 * Exit 0: nobody answered. On a conflict it prints the line to stdout and to each output path
 * (errors writing one are ignored: the others may work), then powers off (`--poweroff`: `poweroff
 * -f` after `sync`, no orderly shutdown that could let k3s start meanwhile) or exits
 * {@link DAD_CONFLICT_STATUS}. Exit 1 with a message when no interface has the MAC. The power-off
 * reaches libvirt as "shut off" only through ACPI (the lab's domains have `<acpi/>`; without it the
 * kernel halts and the domain stays running), so the boot wait also watches the console for the line.
 */
export const DAD_SCRIPT = `import os, select, socket, struct, sys, time
args = sys.argv[1:]
poweroff = "--poweroff" in args
args = [a for a in args if a != "--poweroff"]
address, mac, outputs = args[0], args[1].lower(), args[2:]
def mac_of(name):
    try:
        with open("/sys/class/net/%s/address" % name) as f:
            return f.read().strip().lower()
    except OSError:
        return ""
names = [n for n in sorted(os.listdir("/sys/class/net")) if mac_of(n) == mac]
if not names:
    sys.exit("cilium-lab: duplicate-address check: no interface has MAC %s" % mac)
own = bytes.fromhex(mac.replace(":", ""))
target = socket.inet_aton(address)
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
sock.bind((names[0], 0))
probe = b"\\xff" * 6 + own + b"\\x08\\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + own + bytes(4) + bytes(6) + target
start = time.monotonic()
sends = [0.0, 0.5, 1.0]
end = 2.0
holder = None
while holder is None:
    now = time.monotonic() - start
    while sends and sends[0] <= now:
        sends.pop(0)
        sock.send(probe)
    if now >= end:
        break
    wait = min([end] + sends[:1]) - now
    if not select.select([sock], [], [], max(wait, 0))[0]:
        continue
    frame, where = sock.recvfrom(2048)
    if where[2] == socket.PACKET_OUTGOING or len(frame) < 42 or frame[12:14] != b"\\x08\\x06":
        continue
    sender_mac, sender_ip = frame[22:28], frame[28:32]
    if sender_ip == target and sender_mac != own:
        holder = ":".join("%02x" % b for b in sender_mac)
if holder is None:
    sys.exit(0)
line = "${DAD_CONFLICT_MARKER} %s answered by %s" % (address, holder)
print(line, flush=True)
for path in outputs:
    try:
        with open(path, "w") as out:
            out.write("\\r\\n" + line + "\\r\\n")
    except OSError:
        pass
if poweroff:
    os.sync()
    os.execvp("poweroff", ["poweroff", "-f"])
sys.exit(${DAD_CONFLICT_STATUS})
`;

/** The cloud-init `bootcmd` entry that runs the check for the node's address and MAC, powering off on a conflict. */
export function dadBootcmd(address: string, mac: string): string[] {
  return ["python3", "-c", DAD_SCRIPT, "--poweroff", address, mac.toLowerCase(), ...DAD_CONSOLES];
}
