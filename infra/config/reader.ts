/**
 * Reading the raw stack config: the problems and warnings found so far, and the value of every key
 * that passed its own rules. {@link readKeys} runs every single-key rule of the key table (type,
 * `min`/`max`, `allowed`, `pattern`, CIDR syntax) in one loop; the cross-key rules (rules.ts) then
 * read values from the same reader and add problems. A key whose own rule failed has no value, so
 * the rules that need it stand down instead of piling on.
 */
import { parseCidr, type Cidr } from "./cidr";
import { acceptedText, KEY_NAMES, KEYS, PROJECT, specOf, type KeyName, type KeySpec } from "./keys";

/** The raw stack config: keys without the `cilium-lab:` prefix, values as the Pulumi SDK gives them. */
export type RawConfig = Readonly<Record<string, string | undefined>>;

/** The value type a key spec reads as; an optional CIDR (empty default) may be unset. */
type ValueOf<S> = S extends { readonly cidrExample: string; readonly default: "" }
  ? Cidr | undefined
  : S extends { readonly cidrExample: string }
    ? Cidr
    : S extends { readonly allowed: readonly (infer A)[] }
      ? A
      : S extends { readonly type: "integer" }
        ? number
        : S extends { readonly type: "boolean" }
          ? boolean
          : string;

/** Every key's value after its own rules: numbers, booleans, allowed literals, parsed CIDRs. */
export type KeyValues = { readonly [K in KeyName]: ValueOf<(typeof KEYS)[K]> };

/** How a value appears in messages: strings quoted, so an empty or padded value is visible. */
function show(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** Collects problems and warnings; holds the values of the keys that passed their own rules. */
export class ConfigReader {
  /** Problems with their key's position in the table (-1: an unknown key), for ordering. */
  private readonly found: { readonly order: number; readonly line: string }[] = [];
  readonly warnings: string[] = [];
  private readonly values = new Map<KeyName, unknown>();

  constructor(private readonly raw: RawConfig) {}

  /** The key's text as set, or its default as text. */
  text(key: KeyName): string {
    const v = this.raw[key];
    return v === undefined ? String(KEYS[key].default) : v;
  }

  /** The value of a key that passed its own rules; `undefined` when it failed (or is an unset CIDR). */
  get<K extends KeyName>(key: K): KeyValues[K] | undefined {
    return this.values.get(key) as KeyValues[K] | undefined;
  }

  /** Adds `cilium-lab:<key>: <what> (got <value>). <accepted>.` */
  fail(key: KeyName, what: string, value: unknown, accepted: string): void {
    this.found.push({
      order: KEY_NAMES.indexOf(key),
      line: `${PROJECT}:${key}: ${what} (got ${show(value)}). ${accepted}.`,
    });
  }

  /** Adds a non-fatal warning. */
  warn(line: string): void {
    this.warnings.push(line);
  }

  /** Reports every key of the raw config that the table does not declare, naming the nearest one. */
  refuseUnknownKeys(nearest: (unknown: string) => KeyName): void {
    for (const key of Object.keys(this.raw)) {
      if (!(key in KEYS)) {
        this.found.push({
          order: -1,
          line:
            `${PROJECT}:${key}: unknown key (got ${show(this.raw[key])}). Did you mean \`${PROJECT}:${nearest(key)}\`? ` +
            `Remove it with \`pulumi config rm ${PROJECT}:${key}\`.`,
        });
      }
    }
  }

  /** Runs a key's own rules (see {@link readKeys}) and keeps its value when they all pass. */
  read(key: KeyName): void {
    const before = this.found.length;
    const value = readKey(this, key, specOf(key));
    if (this.found.length === before) {
      this.values.set(key, value);
    }
  }

  /** Every problem, in the key table's order (unknown keys first), in the order found within a key. */
  problems(): string[] {
    return [...this.found].sort((a, b) => a.order - b.order).map((p) => p.line);
  }

  /** Every key's value, once no rule has found a problem; `undefined` while any has. */
  complete(): KeyValues | undefined {
    if (this.found.length > 0 || this.values.size !== KEY_NAMES.length) {
      return undefined;
    }
    return Object.fromEntries(this.values) as KeyValues;
  }
}

/** Runs every key's own rules, in table order. */
export function readKeys(r: ConfigReader): void {
  for (const key of KEY_NAMES) {
    r.read(key);
  }
}

function readKey(r: ConfigReader, key: KeyName, spec: KeySpec): unknown {
  if (spec.type === "integer") {
    const text = r.text(key).trim();
    const n = /^-?\d+$/.test(text) ? Number(text) : NaN;
    if (Number.isNaN(n)) {
      r.fail(key, "must be an integer", r.text(key), acceptedText(key));
    } else if (n < (spec.min ?? -Infinity) || n > (spec.max ?? Infinity)) {
      r.fail(key, "is out of range", n, acceptedText(key));
    }
    return n;
  }
  if (spec.type === "boolean") {
    const text = r.text(key).trim();
    if (text !== "true" && text !== "false") {
      r.fail(key, "must be a boolean", r.text(key), acceptedText(key));
    }
    return text === "true";
  }
  return readString(r, key, spec);
}

function readString(r: ConfigReader, key: KeyName, spec: KeySpec): unknown {
  const value = spec.trim === true ? r.text(key).trim() : r.text(key);
  if (spec.allowed !== undefined && !spec.allowed.includes(value)) {
    r.fail(key, "is not supported", value, acceptedText(key));
    return undefined;
  }
  // An empty value of a key whose default is empty means "not set": nothing to check.
  const unset = value === "" && spec.default === "";
  if (spec.cidrExample !== undefined) {
    const cidr = unset ? undefined : parseCidr(value);
    if (typeof cidr === "string") {
      r.fail(key, cidr, value, acceptedText(key));
    }
    return cidr;
  }
  if (spec.pattern !== undefined && !unset && !spec.pattern.test(value)) {
    r.fail(key, spec.mismatch ?? "has the wrong form", r.text(key), acceptedText(key));
  }
  return value;
}
