/**
 * Ubuntu's released simplestreams index: which serials of a release exist.
 *
 * `<root>/streams/v1/com.ubuntu.cloud:released:download.json` (format `products:1.0`) maps product
 * ids such as `com.ubuntu.cloud:server:23.04:amd64` to `versions`, keyed by serial (`20231005`,
 * also `20240523.1`), each with `items`; the qcow2 image is the item `disk1.img`, e.g.
 *   "disk1.img": { "ftype": "disk1.img", "md5": "…",
 *     "path": "server/releases/noble/release-20240605.1/ubuntu-24.04-server-cloudimg-amd64.img",
 *     "sha256": "473db8a5…", "size": 583401472 }
 * (a copy of Ubuntu's file dated "Thu, 22 Aug 2024 03:28:23 +0000", creator
 * "climdb-download-streams-export", kept in github.com/ieroglyph-cnncl-test/mpss-lib test/longjson.hpp;
 * the 23.04 product's 14 serials 20230420 … 20231005 are asserted by a public test of the `spin`
 * tool (`spin.plugin.images.UbuntuGetter`) that parses a copy of the same file from Oct 2023).
 *
 * The index is not signed here (the signed variant is the `.sjson`): it only chooses the serial.
 * Integrity still comes from that serial's signed `SHA256SUMS` and the image's hash.
 * Only the serial is taken from it; URLs are built from the pinned layout
 * `<root>/<codename>/release-<serial>/<file>`, not from `path` (relative to a mirror root we do not use).
 */

/** The index file under a root (`https://cloud-images.ubuntu.com/releases/`). */
export const SIMPLESTREAMS_INDEX = "streams/v1/com.ubuntu.cloud:released:download.json";

/** The product id of an Ubuntu server image release for amd64. */
export function productId(release: string, arch = "amd64"): string {
  return `com.ubuntu.cloud:server:${release}:${arch}`;
}

const SERIAL_RE = /^(\d{8})(?:\.(\d+))?$/;

/** Orders serials: `20231005` < `20231005.1` < `20231006`. Throws on something that is not a serial. */
export function compareSerials(a: string, b: string): number {
  const ma = SERIAL_RE.exec(a);
  const mb = SERIAL_RE.exec(b);
  if (!ma || !mb) {
    throw new Error(`not an Ubuntu image serial: ${JSON.stringify(ma ? b : a)} (expected yyyyMMdd or yyyyMMdd.N)`);
  }
  const day = Number(ma[1]) - Number(mb[1]);
  return day !== 0 ? day : Number(ma[2] ?? "-1") - Number(mb[2] ?? "-1");
}

/** Whether `s` looks like an image serial (`yyyyMMdd` or `yyyyMMdd.N`). */
export function isSerial(s: string): boolean {
  return SERIAL_RE.test(s);
}

/**
 * The serials of `product` that carry a `disk1.img` named `fileName`, oldest first. Undefined when
 * the index has no such product (an index that dropped an EOL release). Throws when the text is not
 * a products:1.0 index.
 */
export function productSerials(indexText: string, product: string, fileName: string): string[] | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(indexText);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`, { cause: err });
  }
  const products = (doc as { products?: unknown })?.products;
  if (products === null || typeof products !== "object") {
    throw new Error(`no "products" object (format ${JSON.stringify((doc as { format?: unknown })?.format)})`);
  }
  const entry = (products as Record<string, unknown>)[product] as
    { versions?: Record<string, { items?: Record<string, { path?: unknown }> }> } | undefined;
  if (entry === undefined) {
    return undefined;
  }
  const serials: string[] = [];
  for (const [serial, version] of Object.entries(entry.versions ?? {})) {
    const disk = version?.items?.["disk1.img"];
    if (!isSerial(serial) || disk === undefined) {
      continue;
    }
    // The path names the directory and the file; skip entries whose layout is not ours.
    const p = typeof disk.path === "string" ? disk.path : "";
    if (!p.endsWith(`/release-${serial}/${fileName}`)) {
      continue;
    }
    serials.push(serial);
  }
  return serials.sort(compareSerials);
}

/** The newest of `serials` that is not older than `pinned`; `pinned` when none is newer. */
export function pickSerial(serials: readonly string[], pinned: string): string {
  let best = pinned;
  for (const s of serials) {
    if (compareSerials(s, best) > 0) {
      best = s;
    }
  }
  return best;
}
