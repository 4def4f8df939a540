/**
 * The lines scripts/node/probe-upstreams.sh prints on node-1, as probe.netns.test.ts expects them:
 * one result line per URL, then a report (step, class and what, details, the class's fix) per
 * failure; and the assertion that compares them line by line.
 */
import type { ExecutionContext } from "ava";

/** What a result line's time looks like (`0.0 s`, `10.0 s`). */
const T = "\\d+\\.\\d s";
/** The fix the script prints after each failure class. */
const FIX = {
  DNS: "the node cannot resolve names. Its resolver is the libvirt network's dnsmasq (the network's gateway), which forwards to the host's resolver: check the host's /etc/resolv.conf or 'resolvectl status', and that the lab network is active ('virsh net-info cilium-lab-<stack>'); 'npm run lab -- doctor <stack>' checks the host. Without internet access, install air-gapped (cilium-lab:k3sAirgapDir, see the README).",
  TCP: "the node's connections do not get through. Most often the host's firewall drops the lab network's forwarded traffic (Docker and UFW set the FORWARD policy to DROP): run 'npm run lab -- doctor <stack>'. Else a firewall between the host and the internet blocks these connections: allow the hosts listed in the README, set a proxy, or install air-gapped (cilium-lab:k3sAirgapDir).",
  TLS: "the TLS handshake failed: a proxy or firewall that intercepts HTTPS (its CA is not trusted by the node: add it to the image, or let these hosts through uninspected), or a wrong clock (compare 'date -u' on the node and the host).",
  HTTP: "the server, or a proxy on the way, answered with an error or not at all: HTTP 404 from a k3s URL means cilium-lab:k3sVersion is not a published release (https://github.com/k3s-io/k3s/releases); 403, 407, 429 and 5xx usually come from a proxy or a rate limit: check the proxy, or retry later.",
} as const;

/** A failure class of the probe: DNS, TCP, TLS or HTTP. */
export type FailureClass = keyof typeof FIX;

/** A regular expression for one exact line, with `{T}` for the elapsed time. */
function line(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{T\}/g, T)}$`);
}

/** An expected line: a string exactly, a regular expression as a whole line. */
export type Expected = string | RegExp;

/** Asserts the lines one by one: strings exactly, regular expressions as a whole line. */
export function assertLines(t: ExecutionContext, actual: string[], expected: Expected[]): void {
  t.is(actual.length, expected.length, `line count:\n${actual.join("\n")}`);
  expected.forEach((e, i) => {
    if (typeof e === "string") {
      t.is(actual[i], e, `line ${i + 1}`);
    } else {
      t.regex(actual[i] ?? "", e, `line ${i + 1}`);
    }
  });
}

/** The result line of one URL: `cilium-lab[node-1]: probe NAME URL: OUTCOME`, with `{T}` for the elapsed time. */
export function result(name: string, url: string, outcome: string): RegExp {
  return line(`cilium-lab[node-1]: probe ${name} ${url}: ${outcome}`);
}

/** The error report of one failed URL: its step and exit code, `  | CLASS: WHAT`, further details, then the class's fix. */
export function report(
  name: string,
  exit: number,
  cls: FailureClass,
  what: string,
  ...details: Expected[]
): Expected[] {
  return [
    `cilium-lab error: node=node-1 step="probe ${name}" exit=${exit}`,
    `  | ${cls}: ${what}`,
    ...details,
    `cilium-lab fix: ${FIX[cls]}`,
  ];
}

/** A report's `  | redirects:` line: the URLs curl went through, in order. */
export const redirects = (...hops: string[]): string => `  | redirects: ${hops.join(" -> ")}`;
