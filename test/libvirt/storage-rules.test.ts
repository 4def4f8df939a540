// Pure rules of the storage resources (StoragePool, Volume): input checks with exact reasons. Their
// diffs are in rules.test.ts with the other libvirt resources'.
import test from "ava";

import { storagePoolProvider } from "../../infra/libvirt/pool";
import { volumeProvider } from "../../infra/libvirt/volume";
import { direct } from "./support";

test("Volume check: pool name, volume name, absolute backing path, size", async (t) => {
  const r = await direct(volumeProvider).check(
    {},
    {
      uri: "qemu:///system",
      pool: "bad pool",
      name: "../x",
      backingPath: "base.qcow2",
      sizeGiB: 0,
      stack: "s",
    },
  );
  t.deepEqual(r.failures, [
    { property: "pool", reason: 'must be a libvirt pool name, got "bad pool"' },
    {
      property: "name",
      reason: 'must be a plain volume name ([A-Za-z0-9._-], not cilium-lab-pool.json), got "../x"',
    },
    { property: "backingPath", reason: 'must be an absolute path, got "base.qcow2"' },
    { property: "sizeGiB", reason: "must be an integer from 1 to 65536, got 0" },
  ]);
  const marker = await direct(volumeProvider).check(
    {},
    { uri: "qemu:///system", pool: "cilium-lab-s", name: "cilium-lab-pool.json", sizeGiB: 1, stack: "s" },
  );
  t.deepEqual(marker.failures, [
    {
      property: "name",
      reason: 'must be a plain volume name ([A-Za-z0-9._-], not cilium-lab-pool.json), got "cilium-lab-pool.json"',
    },
  ]);
  const blank = await direct(volumeProvider).check(
    {},
    { uri: "qemu:///system", pool: "cilium-lab-s", name: "b.qcow2", sizeGiB: 1, stack: "s" },
  );
  t.deepEqual(blank.failures, [], "a blank volume needs no backingPath");
});

test("StoragePool check: URI, pool name, stack", async (t) => {
  const r = await direct(storagePoolProvider).check(
    {},
    { uri: "qemu:///system", poolName: "cilium-lab-pool.json", stack: "bad stack" },
  );
  t.deepEqual(r.failures, [
    {
      property: "poolName",
      reason: 'must be a libvirt pool name ([A-Za-z0-9_.-], at most 100), got "cilium-lab-pool.json"',
    },
    { property: "stack", reason: 'must be a Pulumi stack name, got "bad stack"' },
  ]);
  const ok = await direct(storagePoolProvider).check(
    {},
    { uri: "qemu+ssh://lab@192.0.2.10:2222/system", poolName: "cilium-lab-vxlan", stack: "vxlan" },
  );
  t.deepEqual(ok.failures, []);
});
