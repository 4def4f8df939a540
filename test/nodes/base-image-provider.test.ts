// BaseImage's provider methods as the engine calls them: read of a cached and a removed image, the
// diff (replace only for another image identity or cache, never before deleting), refresh and update
// of states written by commit bf709f1, and the input check.
import test from "ava";
import { promises as fs } from "node:fs";
import * as path from "node:path";

import type * as pulumi from "@pulumi/pulumi";

import {
  UBUNTU_CLOUDIMAGE_FINGERPRINT,
  UBUNTU_CLOUDIMAGE_KEYRING,
  baseImageProvider,
  checkBaseImageInputs,
  type BaseImageInputs,
  type BaseImageOutputs,
} from "../../infra/libvirt/base-image";
import { customInputs, engineRoundTrip, inTmp, makeQcow2, ubuntuInputs } from "./image-test-support";

test("read keeps a cached image and reports one removed by hand as gone", async (t) => {
  await inTmp("img", async (dir) => {
    const img = await makeQcow2(dir, "r.qcow2", 1);
    const provider = await engineRoundTrip(baseImageProvider);
    const { id, outs } = await provider.create(customInputs(img.file, img.sha, path.join(dir, "cache")));
    t.deepEqual(await provider.read?.(id, outs), { id, props: outs });
    await fs.rm(id);
    t.deepEqual(await provider.read?.(id, outs), { id: "" });
    // delete keeps the cache on purpose and never fails.
    await t.notThrowsAsync(async () => provider.delete?.(id, outs as BaseImageOutputs));
  });
});

/** The state commit bf709f1 wrote for a custom image and for ubuntu-24.04 (no serial, no source). */
const OLD_CUSTOM = {
  image: "custom",
  url: "file:///img.qcow2",
  expectedSha256: "a".repeat(64),
  sha256SumsUrl: "",
  keyringPath: "",
  cacheDir: "/cache",
  path: `/cache/images/${"a".repeat(64)}.qcow2`,
  sha256: "a".repeat(64),
  sizeBytes: 1,
  downloadedBytes: 1,
} as unknown as BaseImageOutputs;
const OLD_NOBLE = {
  image: "ubuntu-24.04",
  url: "https://cloud-images.ubuntu.com/releases/noble/release-20240423/ubuntu-24.04-server-cloudimg-amd64.img",
  expectedSha256: "",
  sha256SumsUrl: "https://cloud-images.ubuntu.com/releases/noble/release-20240423/SHA256SUMS",
  keyringPath: UBUNTU_CLOUDIMAGE_KEYRING,
  cacheDir: "/cache",
  path: `/cache/images/${"b".repeat(64)}.qcow2`,
  sha256: "b".repeat(64),
  sizeBytes: 1,
  downloadedBytes: 1,
} as unknown as BaseImageOutputs;
/** The custom image's inputs as the config gives them today, and the state they create. */
const CUSTOM_NEWS = customInputs("file:///img.qcow2", "a".repeat(64), "/cache");
const NEW_CUSTOM: BaseImageOutputs = {
  ...CUSTOM_NEWS,
  path: OLD_CUSTOM.path,
  sha256: "a".repeat(64),
  sizeBytes: 1,
  downloadedBytes: 1,
  serial: "",
  source: "file:///img.qcow2",
};
const NOBLE_NEWS = ubuntuInputs(
  ["https://cloud-images.ubuntu.com/releases/"],
  { keyring: UBUNTU_CLOUDIMAGE_KEYRING, fingerprint: UBUNTU_CLOUDIMAGE_FINGERPRINT },
  "/cache",
);

/** The diff results without deleteBeforeReplace (never set): no change, or a replace for `keys`. */
const NO_CHANGE = { changes: false, replaces: [] };
const replace = (...keys: string[]): pulumi.dynamic.DiffResult => ({ changes: true, replaces: keys });

const diffTable: {
  title: string;
  olds: BaseImageOutputs;
  news: BaseImageInputs;
  expected: pulumi.dynamic.DiffResult;
}[] = [
  {
    title: "the same inputs: no change",
    olds: NEW_CUSTOM,
    news: CUSTOM_NEWS,
    expected: NO_CHANGE,
  },
  {
    title: "another URL for the same hash: no change (same file)",
    olds: NEW_CUSTOM,
    news: customInputs("file:///other.qcow2", "a".repeat(64), "/cache"),
    expected: NO_CHANGE,
  },
  {
    title: "another hash: replace",
    olds: NEW_CUSTOM,
    news: customInputs("file:///img.qcow2", "b".repeat(64), "/cache"),
    expected: replace("expectedSha256"),
  },
  {
    title: "another cache: replace",
    olds: NEW_CUSTOM,
    news: customInputs("file:///img.qcow2", "a".repeat(64), "/other"),
    expected: replace("cacheDir"),
  },
  {
    title: "another image label: no change",
    olds: NEW_CUSTOM,
    news: { ...CUSTOM_NEWS, image: "renamed" },
    expected: NO_CHANGE,
  },
  {
    title: "a custom image becomes Ubuntu 24.04: replace",
    olds: NEW_CUSTOM,
    news: NOBLE_NEWS,
    expected: replace("release"),
  },
  {
    title: "a bf709f1 custom state under the new inputs: no change",
    olds: OLD_CUSTOM,
    news: CUSTOM_NEWS,
    expected: NO_CHANGE,
  },
  {
    title: "a bf709f1 ubuntu-24.04 state under the new inputs: no change",
    olds: OLD_NOBLE,
    news: NOBLE_NEWS,
    expected: NO_CHANGE,
  },
  {
    title: "a bf709f1 ubuntu-24.04 state, config now ubuntu-26.04: replace",
    olds: OLD_NOBLE,
    news: { ...NOBLE_NEWS, image: "ubuntu-26.04", release: "26.04", codename: "resolute", pinnedSerial: "20260927" },
    expected: replace("release"),
  },
  {
    title: "a newer pin or other roots for the same release: no change (never re-resolved)",
    olds: {
      ...NOBLE_NEWS,
      path: "/p",
      sha256: "b".repeat(64),
      sizeBytes: 1,
      downloadedBytes: 1,
      serial: "20240423",
      source: "https://x/",
    },
    news: { ...NOBLE_NEWS, pinnedSerial: "20250101", roots: ["http://mirror.invalid/"] },
    expected: NO_CHANGE,
  },
];
for (const row of diffTable) {
  test(`diff: ${row.title}`, async (t) => {
    // A replacement never deletes first: the cached file is shared and kept.
    t.deepEqual(await baseImageProvider.diff?.("id", row.olds, row.news), {
      ...row.expected,
      deleteBeforeReplace: false,
    });
  });
}

test("refresh and update complete a bf709f1 state's serial and source from its URL, without network, keeping its path", async (t) => {
  await inTmp("old", async (dir) => {
    const file = path.join(dir, "images", `${"b".repeat(64)}.qcow2`);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, "x");
    const olds = { ...OLD_NOBLE, cacheDir: dir, path: file } as BaseImageOutputs;
    const read = await baseImageProvider.read?.(file, olds);
    t.deepEqual(read, {
      id: file,
      props: {
        ...olds,
        serial: "20240423",
        source: "https://cloud-images.ubuntu.com/releases/noble/release-20240423/",
      },
    });
    const updated = await baseImageProvider.update?.(file, olds, { ...NOBLE_NEWS, cacheDir: dir });
    t.deepEqual(updated?.outs, {
      ...NOBLE_NEWS,
      cacheDir: dir,
      path: file,
      sha256: "b".repeat(64),
      sizeBytes: 1,
      downloadedBytes: 1,
      serial: "20240423",
      source: "https://cloud-images.ubuntu.com/releases/noble/release-20240423/",
    });
    const custom = await baseImageProvider.read?.(OLD_CUSTOM.path, { ...OLD_CUSTOM, path: file });
    t.like(custom?.props, { serial: "", source: "file:///img.qcow2", path: file });
  });
});

const checkTable: { title: string; news: Partial<BaseImageInputs>; properties: string[] }[] = [
  {
    title: "a custom image",
    news: customInputs("https://example.invalid/x.qcow2", "a".repeat(64), "/c"),
    properties: [],
  },
  {
    title: "a custom image over http",
    news: customInputs("http://example.invalid/x.qcow2", "a".repeat(64), "/c"),
    properties: [],
  },
  { title: "an Ubuntu image", news: NOBLE_NEWS, properties: [] },
  { title: "a relative path", news: customInputs("images/x.qcow2", "a".repeat(64), "/c"), properties: ["url"] },
  { title: "an upper-case hash", news: customInputs("/x.qcow2", "A".repeat(64), "/c"), properties: ["expectedSha256"] },
  {
    title: "no hash and no release",
    news: customInputs("/x.qcow2", "", "/c"),
    properties: ["release", "pinnedSerial", "roots", "keyringPath", "signingKeyFingerprint"],
  },
  {
    title: "an Ubuntu image with a root without a trailing slash",
    news: { ...NOBLE_NEWS, roots: ["https://x.invalid/releases"] },
    properties: ["roots"],
  },
  { title: "a relative cache", news: customInputs("/x.qcow2", "a".repeat(64), "cache"), properties: ["cacheDir"] },
];
for (const row of checkTable) {
  test(`check: ${row.title}`, (t) => {
    t.deepEqual(
      checkBaseImageInputs(row.news).map((f) => f.property),
      row.properties,
    );
  });
}
