/**
 * The `compare` command line: pure parsing with `node:util` `parseArgs`, exact messages, the help text.
 * No I/O here, so every message is table-tested (test/compare/args.test.ts).
 */
import { parseArgs } from "node:util";

import {
  isMode,
  MODES,
  modeVariant,
  parseVariants,
  UsageError,
  VARIANT_KEYS,
  type Mode,
  type Variant,
} from "./variants";

export { isMode, MODES, UsageError, type Mode, type Variant };

/** The stack used when `--stack` is absent: the article's starting lab (`stacks/Pulumi.vxlan.yaml`). */
export const DEFAULT_STACK = "vxlan";

/** What the command line asks for. */
export interface CompareArgs {
  /** Modes to measure, in this order, each once. Default: all of {@link MODES}. */
  readonly modes: readonly Mode[];
  /**
   * What is measured, in this order: `--variants`, else `--modes` as plain-mode variants. Default:
   * every mode of {@link MODES}.
   */
  readonly variants: readonly Variant[];
  /** Which option named them (for messages): `--variants`, else `--modes`. */
  readonly listedAs: "--modes" | "--variants";
  /** The Pulumi stack that holds the lab. Default {@link DEFAULT_STACK}. */
  readonly stack: string;
  /** Destroy the lab after measuring (and after a failure; not after Ctrl-C). Default false. */
  readonly destroy: boolean;
  /** Where results go: `<resultsDir>/<timestamp>/`. Default `results` under the repository. */
  readonly resultsDir: string | undefined;
  /** `--help`: print {@link HELP} and do nothing else. */
  readonly help: boolean;
}

/** `npm run compare -- --help`. */
export const HELP = `usage: npm run compare -- [--modes vxlan,geneve,native] [--stack NAME] [--destroy] [--results DIR] [--help]
       npm run compare -- --variants LIST [--stack NAME] [--destroy] [--results DIR]

The article's whole experiment in one command, and the series' datapath switches beside it. On one
Pulumi stack (local file backend .pulumi-state/ unless PULUMI_BACKEND_URL is set), for each
requested variant in order:
  1. set the stack's routing mode (cilium-lab:routingMode; native also sets
     autoDirectNodeRoutes=true and nativeRoutingCidr, like the article's
     \`helm upgrade --set tunnel=disabled --set autoDirectNodeRoutes=true
     --set ipv4NativeRoutingCIDR=10.0.0.0/22\`) and the variant's feature keys; every other
     switched key goes back to the stack's own value,
  2. \`pulumi up\`: the first one brings the lab up (or reuses a running one); later ones switch
     Cilium in place and re-run the iperf3 and netperf measurements,
  3. collect the stack outputs (datapath evidence and verdict, features, iperf3 and netperf statistics).
Then it optionally destroys the lab, restores the stack's config file exactly as it was, and writes
  results/<timestamp>/results.json   every output and run, machine-readable
  results/<timestamp>/report.md      per variant: what was asked for, what the agents say runs,
                                     throughput, latency, the explanation; the environment; the
                                     article's figures
  results/<timestamp>/throughput.svg pod<->pod and host<->host per variant, with min-max error bars
  results/<timestamp>/latency.svg    netperf TCP_RR and TCP_CRR p50 per variant and path, min-max error bars

variants: a routing mode, then optional +key=value feature keys, comma-separated:
  --variants vxlan,native,native+hostRouting=bpf+kubeProxyReplacement=true+bpfMasquerade=true
  keys: ${VARIANT_KEYS.join(", ")}
  (the stack keys of the same names; see the README's configuration table for their values).
  Each variant changes the Cilium Helm values only; a variant that changes kubeProxyReplacement
  also re-runs k3s on every node (with or without --disable-kube-proxy): the run says so per variant.
  networkMtu is refused: it replaces the network and every VM (set it on the stack instead).
  Every variant's config is checked by the program's own parser against the stack's config before
  anything changes (e.g. hostRouting=bpf needs kubeProxyReplacement=true and bpfMasquerade=true).

options:
  --modes LIST    comma-separated routing modes, measured in this order
                  (vxlan, geneve, native; default: vxlan,geneve,native); shorthand for
                  --variants with plain modes
  --variants LIST comma-separated variants (see above), measured in this order
  --stack NAME    the Pulumi stack holding the lab (default: ${DEFAULT_STACK}; stacks/Pulumi.NAME.yaml)
  --destroy       destroy the lab at the end (also after a failed variant; not after Ctrl-C)
  --results DIR   write results under DIR instead of results/
  -h, --help      show this help

before anything starts it checks: \`pulumi\` on PATH (install it from
https://www.pulumi.com/docs/install/, or on a host without internet access run
eval "$(bash scripts/toolchain.sh)"), libvirt access (\`virsh -c qemu:///system version\`), the
host-side inputs the stack config names (k3sAirgapDir, ciliumChart, an image file, gpgv and Ubuntu's
keyring), and that every variant's stack config is valid.

secrets: PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE if set, else the passphrase file
.pulumi-state/passphrase that \`npm run lab\` uses (created once, mode 0600).

Ctrl-C: stops after the current Pulumi operation (a second Ctrl-C interrupts it), restores the
stack config and prints how to recover: npm run lab -- cancel|refresh|destroy <stack>.

Measurements take several minutes per variant; under TCG (accelerator: qemu) the throughput and
latency are not representative of any real network and the report says so.`;

const OPTIONS = {
  modes: { type: "string" },
  variants: { type: "string" },
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
  let variants: readonly Variant[] | undefined;
  let modesGiven = false;
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
      case "variants":
      case "stack":
      case "results": {
        const value = token.value;
        if (value === undefined || (!token.inlineValue && value.startsWith("-"))) {
          const example = {
            modes: "--modes vxlan,native",
            variants: "--variants vxlan,native+kubeProxyReplacement=true",
            stack: "--stack vxlan",
            results: "--results /tmp/out",
          }[name];
          throw new UsageError(`compare: ${rawName} needs a value, e.g. ${example}`);
        }
        if (name === "modes") {
          modes = parseModes(value);
          modesGiven = true;
        } else if (name === "variants") {
          variants = parseVariants(value);
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
          `compare: unknown option ${rawName} (options: --modes, --variants, --stack, --destroy, --results, --help)`,
        );
    }
  }
  if (variants !== undefined && modesGiven) {
    throw new UsageError(
      "compare: use --modes or --variants, not both (--modes vxlan,native is the same as --variants vxlan,native)",
    );
  }
  if (variants !== undefined) {
    return {
      modes: [...new Set(variants.map((v) => v.mode))],
      variants,
      listedAs: "--variants",
      stack,
      destroy,
      help,
      resultsDir,
    };
  }
  return { modes, variants: modes.map(modeVariant), listedAs: "--modes", stack, destroy, help, resultsDir };
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
