/** Running the preflight in the program: every problem at once, or the warnings to log. */
import { evaluatePreflight } from "./evaluate";
import { gatherHostFacts } from "./gather";
import type { HostFacts, PreflightRequest } from "./types";

/** Every problem at once; `problems` holds one line each. */
export class LibvirtPreflightError extends Error {
  override name = "LibvirtPreflightError";
  constructor(readonly problems: readonly string[]) {
    super(
      `the host is not ready for cilium-lab (${problems.length} problem${problems.length === 1 ? "" : "s"}; nothing was created):\n` +
        problems.map((p) => `- ${p}`).join("\n"),
    );
  }
}

/** Environment variable that turns the preflight off (`off`): for mock tests of the program, or a host the checks misjudge. */
export const PREFLIGHT_ENV = "CILIUM_LAB_PREFLIGHT";

/**
 * Runs the preflight for each libvirt host; throws {@link LibvirtPreflightError} listing every
 * problem (prefixed with its host when there are several), else returns the warnings for the
 * program to log. `CILIUM_LAB_PREFLIGHT=off` skips it (returning a warning saying so).
 */
export function preflightLibvirt(
  reqs: PreflightRequest | readonly PreflightRequest[],
  facts?: HostFacts,
): readonly string[] {
  if (process.env[PREFLIGHT_ENV] === "off") {
    return [`host preflight skipped (${PREFLIGHT_ENV}=off): host problems will surface later, as resource errors`];
  }
  const list: readonly PreflightRequest[] = Array.isArray(reqs) ? reqs : [reqs as PreflightRequest];
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const req of list) {
    const result = evaluatePreflight(req, facts ?? gatherHostFacts(req));
    const on = (text: string): string => (list.length > 1 ? `on ${req.uri}: ${text}` : text);
    problems.push(...result.problems.map(on));
    warnings.push(...result.warnings.map(on));
  }
  if (problems.length > 0) {
    throw new LibvirtPreflightError(problems);
  }
  return warnings;
}
