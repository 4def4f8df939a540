/**
 * What `compare` measures: variants. A variant is a routing mode plus feature keys, written
 * `native+hostRouting=bpf+kubeProxyReplacement=true`. This file is the grammar (pure, exact
 * messages, table-tested in test/compare/variants.test.ts); the values are checked against the
 * user's whole stack config by the program's own parser when the run is planned (modes.ts), so an
 * impossible combination is refused with the parser's reason before anything changes.
 */

import { FEATURE_CONFIG_KEYS } from "../../infra/cilium/features";
import { nearestKey } from "../../infra/config/parse";

/** The routing modes `compare` knows, in the default order: the article's start, the other tunnel, the article's end. */
export const MODES = ["vxlan", "geneve", "native"] as const;
/** One Cilium routing mode (the stack key `cilium-lab:routingMode`). */
export type Mode = (typeof MODES)[number];

/** Narrows a string to {@link Mode}. */
export function isMode(name: string): name is Mode {
  return (MODES as readonly string[]).includes(name);
}

/**
 * The stack keys a variant may set after its mode: the series' datapath switches. Each changes
 * only the Cilium Helm values, except `kubeProxyReplacement`, which also re-runs k3s (with or
 * without `--disable-kube-proxy`).
 */
export type VariantKey = Exclude<(typeof FEATURE_CONFIG_KEYS)[number], (typeof LAB_LEVEL_KEYS)[number]>;

/**
 * Keys the feature prediction reads that are not switches between measurements: the routing mode
 * is the variant's first part; the Cilium version and the image are the lab itself.
 */
const LAB_LEVEL_KEYS = ["routingMode", "ciliumVersion", "image"] as const;

/** The variant keys: the stack keys the feature prediction reads (infra/cilium/features.ts), less the lab-level ones. */
export const VARIANT_KEYS: readonly VariantKey[] = FEATURE_CONFIG_KEYS.filter(
  (k): k is VariantKey => !(LAB_LEVEL_KEYS as readonly string[]).includes(k),
);

/** Stack keys that exist but cannot be a variant key, each with the reason the user sees. */
export const REFUSED_VARIANT_KEYS: Readonly<Record<string, string>> = {
  networkMtu:
    "it is the libvirt network's MTU: changing it replaces the network and every VM, which is a new lab, not a switch " +
    "between measurements. Set cilium-lab:networkMtu on the stack and run compare on that stack",
  routingMode: "the routing mode is the variant's first part (e.g. native+hostRouting=bpf)",
  autoDirectNodeRoutes: "the routing mode sets it (true for native, false for the tunnels)",
  nativeRoutingCidr: "the routing mode sets it (the stack's own, else the article's 10.0.0.0/22)",
};

/** One variant as the command line gave it. */
export interface Variant {
  /** How it is shown everywhere: the text as given, without spaces, e.g. `native+hostRouting=bpf`. */
  readonly name: string;
  readonly mode: Mode;
  /** The feature keys it sets (unprefixed), in the order given; empty for a plain mode. */
  readonly keys: Readonly<Partial<Record<VariantKey, string>>>;
}

/** A command-line mistake; `message` is what the user sees, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

function isVariantKey(key: string): key is VariantKey {
  return (VARIANT_KEYS as readonly string[]).includes(key);
}

/**
 * The variant key an unknown key most likely meant: the program's own nearest stack key
 * (infra/config `nearestKey`), when that is a variant key; `undefined` otherwise.
 */
export function nearestVariantKey(unknown: string): VariantKey | undefined {
  const key = nearestKey(unknown);
  return isVariantKey(key) ? key : undefined;
}

/** A plain mode as a variant (what `--modes` gives). */
export function modeVariant(mode: Mode): Variant {
  return { name: mode, mode, keys: {} };
}

/**
 * `native+hostRouting=bpf` → the variant. Checks the grammar only (mode first, `key=value` parts,
 * known keys, each once); the values are the parser's to judge, against the user's config.
 */
export function parseVariant(text: string): Variant {
  const name = text.replace(/\s+/g, "");
  const [first = "", ...parts] = name.split("+");
  const where = `variant "${name}"`;
  if (first === "" || first.includes("=")) {
    throw new UsageError(
      `compare: ${where} does not start with a routing mode (start with ${MODES.join(", ")}; e.g. native+hostRouting=bpf)`,
    );
  }
  if (!isMode(first)) {
    throw new UsageError(`compare: unknown routing mode "${first}" in ${where} (choose from ${MODES.join(", ")})`);
  }
  const keys: Partial<Record<VariantKey, string>> = {};
  for (const part of parts) {
    if (part === "") {
      throw new UsageError(`compare: ${where} has an empty part (write mode+key=value+key=value)`);
    }
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    if (eq < 0 || eq === part.length - 1) {
      throw new UsageError(`compare: ${where}: ${key} needs a value (key=value, e.g. ${key}=true)`);
    }
    const refused = REFUSED_VARIANT_KEYS[key];
    if (refused !== undefined) {
      throw new UsageError(`compare: ${where}: ${key} cannot be a variant key: ${refused}`);
    }
    if (!isVariantKey(key)) {
      const near = nearestVariantKey(key);
      throw new UsageError(
        `compare: ${where}: unknown key "${key}" (${near === undefined ? "" : `did you mean ${near}? `}variant keys: ${VARIANT_KEYS.join(", ")})`,
      );
    }
    if (keys[key] !== undefined) {
      throw new UsageError(`compare: ${where} sets ${key} twice`);
    }
    keys[key] = part.slice(eq + 1);
  }
  return { name, mode: first, keys };
}

/** The same variant whatever the order of its keys: `mode+a=1+b=2` with keys sorted. */
function canonical(v: Variant): string {
  const keys = Object.entries(v.keys)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, val]) => `+${k}=${val}`);
  return `${v.mode}${keys.join("")}`;
}

/** `vxlan,native+hostRouting=bpf` → the variants in order; names the first problem. */
export function parseVariants(text: string): Variant[] {
  const names = text.split(",").map((s) => s.trim());
  if (names.every((n) => n === "")) {
    throw new UsageError(
      `compare: --variants is empty (e.g. --variants vxlan,native,native+hostRouting=bpf+kubeProxyReplacement=true+bpfMasquerade=true)`,
    );
  }
  const variants: Variant[] = [];
  for (const name of names) {
    if (name === "") {
      throw new UsageError(`compare: --variants "${text}" has an empty entry (comma-separated, e.g. vxlan,native)`);
    }
    const v = parseVariant(name);
    const same = variants.find((o) => canonical(o) === canonical(v));
    if (same !== undefined) {
      throw new UsageError(
        same.name === v.name
          ? `compare: variant "${v.name}" is listed twice in --variants`
          : `compare: variants "${same.name}" and "${v.name}" are the same (only the order of their keys differs)`,
      );
    }
    variants.push(v);
  }
  return variants;
}
