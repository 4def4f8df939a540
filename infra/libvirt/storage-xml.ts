/**
 * libvirt storage XML the storage helpers (storage.ts) write and read: a volume definition for
 * `virsh vol-create`, and the fields we need from `vol-dumpxml`, `pool-info` and `capabilities`.
 * Pure: no I/O.
 *
 * Volume XML per https://libvirt.org/formatstorage.html ("Storage volume XML"): `<capacity>` in
 * bytes (`unit='bytes'`); `<target><format type=.../>` is the file format (dir pools: raw, qcow2,
 * ...); `<target><permissions><mode>` the octal mode libvirtd gives the new file;
 * `<backingStore><path>` + `<backingStore><format>` make a copy-on-write overlay of an existing
 * image (libvirt runs `qemu-img create -b <path> -F <format>`, so the backing format is never probed).
 */
import { create } from "xmlbuilder2";

/** What {@link volumeXml} renders. */
export interface VolumeSpec {
  readonly name: string;
  readonly capacityBytes: number;
  readonly format: "qcow2" | "raw";
  /** A copy-on-write overlay of this image (a path on the libvirt host). */
  readonly backing?: { readonly path: string; readonly format: "qcow2" };
  /** Octal file mode as libvirt writes it, default `0600` (overlays will hold the guest's keys). */
  readonly mode?: string;
}

/** The `<volume>` document for `virsh vol-create`. */
export function volumeXml(spec: VolumeSpec): string {
  const root = create().ele("volume");
  root.ele("name").txt(spec.name);
  root.ele("capacity", { unit: "bytes" }).txt(String(spec.capacityBytes));
  root.ele("allocation", { unit: "bytes" }).txt("0");
  const target = root.ele("target");
  target.ele("format", { type: spec.format });
  target
    .ele("permissions")
    .ele("mode")
    .txt(spec.mode ?? "0600");
  if (spec.backing) {
    const backing = root.ele("backingStore");
    backing.ele("path").txt(spec.backing.path);
    backing.ele("format", { type: spec.backing.format });
  }
  return root.end({ headless: true, prettyPrint: true });
}

/** What we read from `virsh vol-dumpxml`. */
export interface VolumeFacts {
  readonly name: string;
  readonly path: string;
  /** Virtual size in bytes. */
  readonly capacityBytes: number;
  /** File format as libvirt probed it (`qcow2`, `raw`, `iso`...); undefined when libvirt gives none. */
  readonly format?: string;
  /** The backing image's path, for an overlay. */
  readonly backingPath?: string;
  readonly backingFormat?: string;
}

type XmlObject = { readonly [key: string]: XmlValue };
type XmlValue = string | XmlObject | readonly XmlValue[] | undefined;

function objectOf(xml: string, rootName: string): XmlObject {
  let doc: XmlObject;
  try {
    doc = create(xml).end({ format: "object" }) as unknown as XmlObject;
  } catch (error) {
    throw new Error(`cannot parse libvirt ${rootName} XML: ${(error as Error).message}`, { cause: error });
  }
  const root = doc[rootName];
  if (root === undefined || typeof root !== "object" || Array.isArray(root)) {
    throw new Error(`expected a single <${rootName}> document from libvirt, got <${Object.keys(doc).join(", ")}>`);
  }
  return root as XmlObject;
}

/** A child element as an object (the first, when repeated). */
function el(parent: XmlObject | undefined, name: string): XmlObject | undefined {
  const v = parent?.[name];
  const first = Array.isArray(v) ? (v as XmlValue[])[0] : v;
  return first !== undefined && typeof first === "object" && !Array.isArray(first) ? (first as XmlObject) : undefined;
}

/** A child element's text (an element with attributes keeps its text under `#`). */
function txt(parent: XmlObject | undefined, name: string): string | undefined {
  const v = parent?.[name];
  if (typeof v === "string") {
    return v.trim();
  }
  const o = el(parent, name);
  return typeof o?.["#"] === "string" ? o["#"].trim() : undefined;
}

function formatOf(parent: XmlObject | undefined): string | undefined {
  const t = el(parent, "format")?.["@type"];
  return typeof t === "string" ? t : undefined;
}

/** The fields of `virsh vol-dumpxml` we use. Capacity is in bytes (libvirt always prints `unit='bytes'`). */
export function parseVolumeXml(xml: string): VolumeFacts {
  const root = objectOf(xml, "volume");
  const target = el(root, "target");
  const backing = el(root, "backingStore");
  const backingPath = txt(backing, "path");
  const format = formatOf(target);
  const backingFormat = formatOf(backing);
  return {
    name: txt(root, "name") ?? "",
    path: txt(target, "path") ?? "",
    capacityBytes: Number(txt(root, "capacity") ?? "0"),
    ...(format !== undefined ? { format } : {}),
    ...(backingPath !== undefined && backingPath !== "" ? { backingPath } : {}),
    ...(backingFormat !== undefined ? { backingFormat } : {}),
  };
}

/** The host UUID of `virsh capabilities` (`/capabilities/host/uuid`). */
export function parseHostUuid(xml: string): string | undefined {
  return txt(el(objectOf(xml, "capabilities"), "host"), "uuid");
}

/** `Key: value` lines of `virsh pool-info --bytes` / `vol-info --bytes`, keys lower-cased. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z ]+):\s*(.*)$/.exec(line.trim());
    if (m) {
      out[(m[1] ?? "").trim().toLowerCase()] = (m[2] ?? "").trim();
    }
  }
  return out;
}

/** The `Name Path` rows of `virsh vol-list <pool>` (our names and paths have no spaces). */
export function parseVolumeList(text: string): { name: string; path: string }[] {
  return text
    .split("\n")
    .slice(2)
    .map((l) => l.trim().split(/\s+/))
    .filter((cols) => cols.length >= 2 && cols[0] !== "")
    .map((cols) => ({ name: cols[0] ?? "", path: cols.slice(1).join(" ") }));
}
