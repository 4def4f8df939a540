/**
 * Which stack config keys each routing mode sets: the article's `helm upgrade` as Pulumi config.
 * Pure; validated with the program's own parser before anything starts.
 */
import { LabConfigError, parseLabConfig, PROJECT, type LabConfig } from "../../infra/config";
import type { Mode } from "./args";

/**
 * The article's native-routing CIDR (`helm upgrade … --set ipv4NativeRoutingCIDR=10.0.0.0/22`),
 * also what `stacks/Pulumi.native.yaml` sets; used when the user's stack sets none and it fits
 * their pod blocks.
 */
export const ARTICLE_NATIVE_ROUTING_CIDR = "10.0.0.0/22";

/** The `cilium-lab:*` keys `compare` may change; everything else in the stack is left alone. */
export const SWITCHED_KEYS = ["routingMode", "autoDirectNodeRoutes", "nativeRoutingCidr"] as const;

/**
 * The keys (without the `cilium-lab:` prefix) to set for `mode`, given the user's own `cilium-lab:*`
 * values (`user`, unprefixed). Tunnel modes set `autoDirectNodeRoutes: false` (Cilium refuses auto
 * direct node routes with a tunnel, and the Helm default is false). Native sets it true and keeps
 * the user's `nativeRoutingCidr`, else the article's 10.0.0.0/22 when that contains every node's
 * pod block, else empty (= the whole podCidr).
 */
export function modeConfig(mode: Mode, user: Readonly<Record<string, string>>): Record<string, string> {
  if (mode !== "native") {
    return { routingMode: mode, autoDirectNodeRoutes: "false" };
  }
  const base = { routingMode: "native", autoDirectNodeRoutes: "true" };
  const own = user.nativeRoutingCidr ?? "";
  if (own !== "") {
    return { ...base, nativeRoutingCidr: own };
  }
  try {
    parseLabConfig({ ...user, ...base, nativeRoutingCidr: ARTICLE_NATIVE_ROUTING_CIDR });
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
 * What to change in the stack config for `mode`, relative to the USER's config (not the previous
 * mode's): the mode's keys, plus every other switched key put back to the user's value, or listed
 * in `remove` when the user had none. So vxlan after native runs without native's
 * nativeRoutingCidr, exactly as a vxlan-only run would.
 */
export function modeSwitch(
  mode: Mode,
  user: Readonly<Record<string, string>>,
): { set: Record<string, string>; remove: string[] } {
  const set = modeConfig(mode, user);
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

/** Each mode's full config, parsed by the program's parser: what `pulumi up` will see. */
export interface PlannedMode {
  readonly mode: Mode;
  /** The keys set for this mode (unprefixed). */
  readonly set: Readonly<Record<string, string>>;
  /** Switched keys the user does not have, removed for this mode if an earlier mode set them (unprefixed). */
  readonly remove: readonly string[];
  readonly config: LabConfig;
  readonly warnings: readonly string[];
}

/**
 * Plans every mode against the user's config and fails before anything starts when a mode's
 * config would be rejected by the program, with the parser's own problem lines.
 */
export function planModes(modes: readonly Mode[], user: Readonly<Record<string, string>>): PlannedMode[] {
  const problems: string[] = [];
  const planned: PlannedMode[] = [];
  for (const mode of modes) {
    const { set, remove } = modeSwitch(mode, user);
    try {
      const { config, warnings } = parseLabConfig({ ...user, ...set });
      planned.push({ mode, set, remove, config, warnings });
    } catch (err) {
      if (err instanceof LabConfigError) {
        problems.push(...err.problems.map((p) => `mode ${mode}: ${p}`));
      } else {
        throw err;
      }
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `compare: the stack config would be invalid for ${problems.length === 1 ? "one mode" : "some modes"} ` +
        `(fix the stack's config with \`pulumi config set ${PROJECT}:<key> <value>\`, or leave the mode out of --modes):\n` +
        problems.map((p) => `- ${p}`).join("\n"),
    );
  }
  return planned;
}
