/**
 * Which stack config keys each variant sets: the article's `helm upgrade` as Pulumi config, plus
 * the variant's feature keys. Pure; validated with the program's own parser before anything starts.
 */
import { LabConfigError, parseLabConfig, PROJECT, type LabConfig } from "../../infra/config";
import { VARIANT_KEYS, type Mode, type Variant } from "./variants";

/**
 * The article's native-routing CIDR (`helm upgrade … --set ipv4NativeRoutingCIDR=10.0.0.0/22`),
 * also what `stacks/Pulumi.native.yaml` sets; used when the user's stack sets none and it fits
 * their pod blocks.
 */
export const ARTICLE_NATIVE_ROUTING_CIDR = "10.0.0.0/22";

/** The `cilium-lab:*` keys `compare` may change; everything else in the stack is left alone. */
export const SWITCHED_KEYS = ["routingMode", "autoDirectNodeRoutes", "nativeRoutingCidr", ...VARIANT_KEYS] as const;

/**
 * The keys (without the `cilium-lab:` prefix) to set for `mode`, given the user's own `cilium-lab:*`
 * values (`user`, unprefixed). Tunnel modes set `autoDirectNodeRoutes: false` (Cilium refuses auto
 * direct node routes with a tunnel, and the Helm default is false). Native sets it true and keeps
 * the user's `nativeRoutingCidr`, else the article's 10.0.0.0/22 when that contains every node's
 * pod block, else empty (= the whole podCidr).
 */
export function modeConfig(
  mode: Mode,
  user: Readonly<Record<string, string>>,
  keys: Readonly<Record<string, string>> = {},
): Record<string, string> {
  if (mode !== "native") {
    return { routingMode: mode, autoDirectNodeRoutes: "false" };
  }
  const base = { routingMode: "native", autoDirectNodeRoutes: "true" };
  const own = user.nativeRoutingCidr ?? "";
  if (own !== "") {
    return { ...base, nativeRoutingCidr: own };
  }
  try {
    parseLabConfig({ ...user, ...keys, ...base, nativeRoutingCidr: ARTICLE_NATIVE_ROUTING_CIDR });
    return { ...base, nativeRoutingCidr: ARTICLE_NATIVE_ROUTING_CIDR };
  } catch {
    return { ...base, nativeRoutingCidr: "" };
  }
}

/** Strips `cilium-lab:` from a Pulumi config map's keys and drops other namespaces. */
export function labKeys(config: Readonly<Record<string, { value: string }>>): Record<string, string> {
  const prefix = `${PROJECT}:`;
  const out: Record<string, string> = {};
  for (const [key, { value }] of Object.entries(config)) {
    if (key.startsWith(prefix)) {
      out[key.slice(prefix.length)] = value;
    }
  }
  return out;
}

/**
 * What to change in the stack config for `variant`, relative to the USER's config (not the previous
 * variant's): the mode's keys and the variant's feature keys, plus every other switched key put
 * back to the user's value, or listed in `remove` when the user had none. So vxlan after native runs
 * without native's nativeRoutingCidr, and a plain native after native+hostRouting=bpf runs with
 * the stack's own hostRouting, exactly as a run of that variant alone would.
 */
export function variantSwitch(
  variant: Variant,
  user: Readonly<Record<string, string>>,
): { set: Record<string, string>; remove: string[] } {
  const keys: Record<string, string> = { ...variant.keys };
  const set = { ...modeConfig(variant.mode, user, keys), ...keys };
  const remove: string[] = [];
  for (const key of SWITCHED_KEYS) {
    if (!(key in set)) {
      const own = user[key];
      if (own !== undefined) {
        set[key] = own;
      } else {
        remove.push(key);
      }
    }
  }
  return { set, remove };
}

/** What a variant's `up` changes in the lab, relative to the config before it. */
export interface VariantChanges {
  /** `hostRouting legacy → bpf`, one per changed key (Cilium's values change for each). */
  readonly keys: readonly string[];
  /** Whether k3s re-runs too (kubeProxyReplacement changed: k3s with or without --disable-kube-proxy). */
  readonly k3s: boolean;
  /** One line for the terminal and the report. */
  readonly summary: string;
}

/** The parsed keys a variant can change, compared one by one. */
const COMPARED = ["routingMode", "autoDirectNodeRoutes", "nativeRoutingCidr", ...VARIANT_KEYS] as const;

/**
 * What changes from `before` (the previous variant's config, or the stack's own for the first) to
 * `after`: Cilium's values only, or also k3s when kubeProxyReplacement changes.
 */
export function variantChanges(before: LabConfig, after: LabConfig, first: boolean): VariantChanges {
  const keys: string[] = [];
  for (const key of COMPARED) {
    if (before[key] !== after[key]) {
      keys.push(`${key} ${String(before[key])} → ${String(after[key])}`);
    }
  }
  const k3s = before.kubeProxyReplacement !== after.kubeProxyReplacement;
  const from = first ? "the stack's own config" : "the previous variant";
  let summary: string;
  if (keys.length === 0) {
    summary = `nothing (no config change from ${from}): the measurements re-run`;
  } else if (k3s) {
    summary =
      `Cilium values and k3s (${keys.join(", ")} from ${from}): kubeProxyReplacement re-runs k3s on every node ` +
      `${after.kubeProxyReplacement ? "with" : "without"} --disable-kube-proxy, then Cilium`;
  } else {
    summary = `Cilium values only (${keys.join(", ")} from ${from})`;
  }
  return { keys, k3s, summary };
}

/** Each variant's full config, parsed by the program's parser: what `pulumi up` will see. */
export interface PlannedVariant {
  /** The variant's name, e.g. `native+hostRouting=bpf` (a plain mode's name is the mode). */
  readonly variant: string;
  readonly mode: Mode;
  /** The keys set for this variant (unprefixed). */
  readonly set: Readonly<Record<string, string>>;
  /** Switched keys the user does not have, removed for this variant if an earlier one set them (unprefixed). */
  readonly remove: readonly string[];
  readonly config: LabConfig;
  readonly warnings: readonly string[];
  /** What its `up` changes: Cilium only, or Cilium and k3s. */
  readonly changes: VariantChanges;
}

/**
 * Plans every variant against the user's config and fails before anything starts when a variant's
 * config would be rejected by the program, with the parser's own problem lines. `listedAs` names
 * the option the variants came from, for the message.
 */
export function planVariants(
  variants: readonly Variant[],
  user: Readonly<Record<string, string>>,
  listedAs: "--modes" | "--variants" = "--variants",
): PlannedVariant[] {
  const word = listedAs === "--modes" ? "mode" : "variant";
  const problems: string[] = [];
  const planned: PlannedVariant[] = [];
  let before: LabConfig | undefined;
  try {
    before = parseLabConfig(user).config;
  } catch {
    // The stack's own config is invalid on its own: each variant's problems say why.
  }
  for (const variant of variants) {
    const { set, remove } = variantSwitch(variant, user);
    try {
      const { config, warnings } = parseLabConfig({ ...user, ...set });
      const changes = variantChanges(before ?? config, config, planned.length === 0);
      planned.push({ variant: variant.name, mode: variant.mode, set, remove, config, warnings, changes });
      before = config;
    } catch (err) {
      if (err instanceof LabConfigError) {
        problems.push(...err.problems.map((p) => `${word} ${variant.name}: ${p}`));
      } else {
        throw err;
      }
    }
  }
  if (problems.length > 0) {
    const names = new Set(problems.map((p) => p.split(":")[0]));
    throw new Error(
      `compare: the stack config would be invalid for ${names.size === 1 ? `one ${word}` : `some ${word}s`} ` +
        `(fix the stack's config with \`pulumi config set ${PROJECT}:<key> <value>\`, or leave the ${word} out of ${listedAs}):\n` +
        problems.map((p) => `- ${p}`).join("\n"),
    );
  }
  return planned;
}
