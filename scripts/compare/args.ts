/**
 * The `compare` command line: pure parsing with `node:util` `parseArgs`, exact messages, the help text.
 * No I/O here, so every message is table-tested (test/compare/args.test.ts).
 */
import { parseArgs } from "node:util";

/** The routing modes `compare` knows, in the default order: the article's start, the other tunnel, the article's end. */
export const MODES = ["vxlan", "geneve", "native"] as const;
/** One Cilium routing mode (the stack key `cilium-lab:routingMode`). */
export type Mode = (typeof MODES)[number];

/** The stack used when `--stack` is absent: the article's starting lab (`stacks/Pulumi.vxlan.yaml`). */
export const DEFAULT_STACK = "vxlan";

/** What the command line asks for. */
export interface CompareArgs {
  /** Modes to measure, in this order, each once. Default: all of {@link MODES}. */
  readonly modes: readonly Mode[];
  /** The Pulumi stack that holds the lab. Default {@link DEFAULT_STACK}. */
  readonly stack: string;
  /** Destroy the lab after measuring (and after a failure; not after Ctrl-C). Default false. */
  readonly destroy: boolean;
  /** Where results go: `<resultsDir>/<timestamp>/`. Default `results` under the repository. */
  readonly resultsDir: string | undefined;
  /** `--help`: print {@link HELP} and do nothing else. */
  readonly help: boolean;
}

/** A command-line mistake; `message` is what the user sees, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** `npm run compare -- --help`. */
export const HELP = `usage: npm run compare -- [--modes vxlan,geneve,native] [--stack NAME] [--destroy] [--results DIR] [--help]

The article's whole experiment in one command. On one Pulumi stack (local file backend
.pulumi-state/ unless PULUMI_BACKEND_URL is set), for each requested mode in order:
  1. set the stack's routing mode (cilium-lab:routingMode; native also sets
     autoDirectNodeRoutes=true and nativeRoutingCidr, like the article's
     \`helm upgrade --set tunnel=disabled --set autoDirectNodeRoutes=true
     --set ipv4NativeRoutingCIDR=10.0.0.0/22\`),
  2. \`pulumi up\`: the first one brings the lab up (or reuses a running one); later ones switch
     Cilium in place and re-run the iperf3 measurements,
  3. collect the stack outputs (datapath evidence and verdict, iperf3 statistics).
Then it optionally destroys the lab, restores the stack's config file exactly as it was, and writes
  results/<timestamp>/results.json   every output and run, machine-readable
  results/<timestamp>/report.md      a table per mode, the environment, the article's figures
  results/<timestamp>/throughput.svg pod<->pod and host<->host per mode, with min-max error bars

options:
  --modes LIST    comma-separated routing modes, measured in this order
                  (vxlan, geneve, native; default: vxlan,geneve,native)
  --stack NAME    the Pulumi stack holding the lab (default: ${DEFAULT_STACK}; stacks/Pulumi.NAME.yaml)
  --destroy       destroy the lab at the end (also after a failed mode; not after Ctrl-C)
  --results DIR   write results under DIR instead of results/
  -h, --help      show this help

before anything starts it checks: \`pulumi\` on PATH (install it from
https://www.pulumi.com/docs/install/, or on a host without internet access run
eval "$(bash scripts/toolchain.sh)"), libvirt access (\`virsh -c qemu:///system version\`), the
host-side inputs the stack config names (k3sAirgapDir, ciliumChart, an image file, gpgv and Ubuntu's
keyring), and that every mode's stack config is valid.

secrets: PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE if set, else the passphrase file
.pulumi-state/passphrase that \`npm run lab\` uses (created once, mode 0600).

Ctrl-C: stops after the current Pulumi operation (a second Ctrl-C interrupts it), restores the
stack config and prints how to recover: npm run lab -- cancel|refresh|destroy <stack>.

Measurements take several minutes per mode; under TCG (accelerator: qemu) the throughput is not
representative of any real network and the report says so.`;

const OPTIONS = {
  modes: { type: "string" },
  stack: { type: "string" },
  destroy: { type: "boolean" },
  results: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Pulumi stack names: letters, digits, `-`, `_`, `.`; optionally `org/project/` or `org/` in front. */
const STACK_NAME = /^(?:[A-Za-z0-9_.-]+\/){0,2}[A-Za-z0-9_.-]+$/;

/**
 * Parses `compare`'s arguments (without `node` and the script). Throws {@link UsageError} with the
 * exact message for the first problem.
 */
export function parseCompareArgs(argv: readonly string[]): CompareArgs {
  const { tokens } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  let modes: readonly Mode[] = MODES;
  let stack = DEFAULT_STACK;
  let destroy = false;
  let help = false;
  let resultsDir: string | undefined;
  for (const token of tokens) {
    if (token.kind === "positional") {
      throw new UsageError(`compare: unexpected argument "${token.value}" (all arguments are options; see --help)`);
    }
    if (token.kind === "option-terminator") {
      continue;
    }
    const { name, rawName } = token;
    switch (name) {
      case "help":
      case "destroy":
        if (token.value !== undefined) {
          throw new UsageError(`compare: ${rawName} takes no value (got "${token.value}")`);
        }
        if (name === "help") {
          help = true;
        } else {
          destroy = true;
        }
        break;
      case "modes":
      case "stack":
      case "results": {
        const value = token.value;
        if (value === undefined || (!token.inlineValue && value.startsWith("-"))) {
          const example = { modes: "--modes vxlan,native", stack: "--stack vxlan", results: "--results /tmp/out" }[
            name
          ];
          throw new UsageError(`compare: ${rawName} needs a value, e.g. ${example}`);
        }
        if (name === "modes") {
          modes = parseModes(value);
        } else if (name === "stack") {
          if (!STACK_NAME.test(value)) {
            throw new UsageError(`compare: invalid stack name "${value}": use letters, digits, '-', '_' or '.'`);
          }
          stack = value;
        } else {
          if (value.trim() === "") {
            throw new UsageError(`compare: --results needs a directory, e.g. --results /tmp/out`);
          }
          resultsDir = value;
        }
        break;
      }
      default:
        throw new UsageError(
          `compare: unknown option ${rawName} (options: --modes, --stack, --destroy, --results, --help)`,
        );
    }
  }
  return { modes, stack, destroy, help, resultsDir };
}

/** `vxlan,native` → `["vxlan", "native"]`; names the first unknown or repeated mode. */
export function parseModes(text: string): Mode[] {
  const names = text.split(",").map((s) => s.trim());
  if (names.every((n) => n === "")) {
    throw new UsageError(`compare: --modes is empty (choose one or more of ${MODES.join(", ")}, comma-separated)`);
  }
  const modes: Mode[] = [];
  for (const name of names) {
    if (name === "") {
      throw new UsageError(`compare: --modes "${text}" has an empty entry (comma-separated, e.g. vxlan,native)`);
    }
    if (!isMode(name)) {
      throw new UsageError(`compare: unknown mode "${name}" in --modes (choose from ${MODES.join(", ")})`);
    }
    if (modes.includes(name)) {
      throw new UsageError(`compare: mode "${name}" is listed twice in --modes`);
    }
    modes.push(name);
  }
  return modes;
}

/** Narrows a string to {@link Mode}. */
export function isMode(name: string): name is Mode {
  return (MODES as readonly string[]).includes(name);
}
