// LabSecrets' provider, as the engine runs it: serialized with Pulumi's closure serializer and
// loaded back with require-from-string (as @pulumi/pulumi cmd/dynamic-provider does), then create/diff/update/read called the
// way `pulumi up` would. ssh-keygen (openssh-client) checks every generated private key.
import test from "ava";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

import * as pulumi from "@pulumi/pulumi";

import {
  LAB_SECRET_OUTPUTS,
  checkLabSecretsInputs,
  hostKeysDiffer,
  labSecretsProvider,
  mergeHostKeys,
  type LabSecretsInputs,
  type LabSecretsOutputs,
} from "../../infra/nodes/secrets";

const execFileAsync = promisify(execFile);
const requireFromString = require("require-from-string") as (code: string) => {
  handler: () => pulumi.dynamic.ResourceProvider;
};

/** The provider after the engine's serialization round trip. */
async function engineProvider(): Promise<pulumi.dynamic.ResourceProvider<LabSecretsInputs, LabSecretsOutputs>> {
  const sf = await pulumi.runtime.serializeFunction(() => labSecretsProvider, { allowSecrets: true });
  return requireFromString(sf.text).handler() as pulumi.dynamic.ResourceProvider<LabSecretsInputs, LabSecretsOutputs>;
}

const INPUTS: LabSecretsInputs = { nodes: ["node-1", "node-2", "node-3"], comment: "cilium-lab-t" };
/** The diff of no change, and of an update that is never a replacement. */
const NO_CHANGE = { changes: false, replaces: [], deleteBeforeReplace: false };
const UPDATE = { changes: true, replaces: [], deleteBeforeReplace: false };
const PUB = (comment: string): RegExp =>
  new RegExp(`^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} ${comment}$`);
const PRIV = /^-----BEGIN OPENSSH PRIVATE KEY-----\n([A-Za-z0-9+/=]{1,70}\n)+-----END OPENSSH PRIVATE KEY-----\n$/;

/** `ssh-keygen -y` of a private key (written 0600 to a temp dir). */
async function publicOf(privateKey: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "cl-n-secrets-"));
  try {
    const file = path.join(dir, "k");
    await fs.writeFile(file, privateKey, { mode: 0o600 });
    try {
      return (await execFileAsync("ssh-keygen", ["-y", "-f", file])).stdout.trim();
    } catch (err) {
      if ((err as { code?: unknown }).code === "ENOENT") {
        throw new Error(
          "`ssh-keygen` not found: install Debian package openssh-client (listed in .ci/apt-packages.txt)",
        );
      }
      throw err;
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

test("create makes a user key, one host key per node and a 32-byte hex token, in exact shapes", async (t) => {
  const provider = await engineProvider();
  const { id, outs } = await provider.create(INPUTS);
  t.regex(id, /^lab-secrets-[0-9a-f]{16}$/);
  if (!outs) {
    return t.fail("no outputs");
  }
  t.deepEqual(Object.keys(outs).sort(), [
    "comment",
    "hostPrivateKeys",
    "hostPublicKeys",
    "k3sToken",
    "nodes",
    "sshPrivateKey",
    "sshPublicKey",
  ]);
  t.deepEqual(outs.nodes, INPUTS.nodes);
  t.regex(outs.sshPublicKey, PUB("cilium-lab-t"));
  t.regex(outs.sshPrivateKey, PRIV);
  t.regex(outs.k3sToken, /^[0-9a-f]{64}$/);
  t.deepEqual(Object.keys(outs.hostPublicKeys), INPUTS.nodes);
  t.deepEqual(Object.keys(outs.hostPrivateKeys), INPUTS.nodes);
  for (const node of INPUTS.nodes) {
    t.regex(outs.hostPublicKeys[node] ?? "", PUB(`cilium-lab-t-${node}`));
    t.regex(outs.hostPrivateKeys[node] ?? "", PRIV);
  }
  t.is(new Set([outs.sshPublicKey, ...Object.values(outs.hostPublicKeys)]).size, 4, "every key is distinct");
});

test("ssh-keygen accepts every generated private key and derives the matching public key", async (t) => {
  const { outs } = await (await engineProvider()).create(INPUTS);
  if (!outs) {
    return t.fail("no outputs");
  }
  t.is(await publicOf(outs.sshPrivateKey), outs.sshPublicKey);
  for (const node of INPUTS.nodes) {
    t.is(await publicOf(outs.hostPrivateKeys[node] ?? ""), outs.hostPublicKeys[node] ?? "missing");
  }
});

test("a second up with the same nodes, in any order, is no change: nothing is regenerated", async (t) => {
  const provider = await engineProvider();
  const { outs } = await provider.create(INPUTS);
  if (!outs || !provider.diff) {
    return t.fail("no outputs or no diff");
  }
  t.deepEqual(await provider.diff("id", outs, INPUTS), NO_CHANGE);
  t.deepEqual(await provider.diff("id", outs, { ...INPUTS, nodes: ["node-3", "node-1", "node-2"] }), NO_CHANGE);
  // The comment is cosmetic: changing it regenerates nothing either.
  t.deepEqual(await provider.diff("id", outs, { ...INPUTS, comment: "renamed" }), NO_CHANGE);
});

test("adding a node is an update that keeps every existing key and the token and adds one host key", async (t) => {
  const provider = await engineProvider();
  const { outs: first } = await provider.create(INPUTS);
  if (!first || !provider.diff || !provider.update) {
    return t.fail("missing method or outputs");
  }
  const news = { ...INPUTS, nodes: [...INPUTS.nodes, "node-4"] };
  const diff = await provider.diff("id", first, news);
  t.deepEqual(diff, UPDATE, "an update, never a replacement");
  const { outs: second } = await provider.update("id", first, news);
  if (!second) {
    return t.fail("no outputs");
  }
  t.is(second.sshPrivateKey, first.sshPrivateKey);
  t.is(second.sshPublicKey, first.sshPublicKey);
  t.is(second.k3sToken, first.k3sToken);
  for (const node of INPUTS.nodes) {
    t.is(second.hostPrivateKeys[node], first.hostPrivateKeys[node]);
    t.is(second.hostPublicKeys[node], first.hostPublicKeys[node]);
  }
  t.regex(second.hostPublicKeys["node-4"] ?? "", PUB("cilium-lab-t-node-4"));
  t.is(await publicOf(second.hostPrivateKeys["node-4"] ?? ""), second.hostPublicKeys["node-4"] ?? "missing");
  t.deepEqual(await provider.diff("id", second, news), NO_CHANGE);
});

test("removing a node drops only its host key", async (t) => {
  const provider = await engineProvider();
  const { outs: first } = await provider.create(INPUTS);
  if (!first || !provider.update) {
    return t.fail("missing method or outputs");
  }
  const { outs: second } = await provider.update("id", first, { ...INPUTS, nodes: ["node-1", "node-2"] });
  t.deepEqual(Object.keys(second?.hostPublicKeys ?? {}), ["node-1", "node-2"]);
  t.deepEqual(Object.keys(second?.hostPrivateKeys ?? {}), ["node-1", "node-2"]);
  t.is(second?.hostPrivateKeys["node-2"], first.hostPrivateKeys["node-2"]);
  t.is(second?.k3sToken, first.k3sToken);
});

test("read (refresh) returns the state unchanged, and delete has nothing to remove", async (t) => {
  const provider = await engineProvider();
  const { id, outs } = await provider.create(INPUTS);
  t.deepEqual(await provider.read?.(id, outs), { id, props: outs });
  await t.notThrowsAsync(async () => provider.delete?.(id, outs as LabSecretsOutputs));
});

const checkTable: { title: string; news: Partial<LabSecretsInputs>; failures: pulumi.dynamic.CheckFailure[] }[] = [
  { title: "three node names and a comment", news: INPUTS, failures: [] },
  {
    title: "no nodes",
    news: { nodes: [], comment: "c" },
    failures: [{ property: "nodes", reason: "nodes must list at least one node name (got [])" }],
  },
  {
    title: "a name that is not a DNS label",
    news: { nodes: ["node-1", "Node_2"], comment: "c" },
    failures: [{ property: "nodes", reason: 'node names must be DNS labels such as node-1 (got ["Node_2"])' }],
  },
  {
    title: "a duplicated name",
    news: { nodes: ["node-1", "node-1"], comment: "c" },
    failures: [{ property: "nodes", reason: 'node names must be unique (duplicated: ["node-1"])' }],
  },
  {
    title: "a comment with a newline",
    news: { nodes: ["node-1"], comment: "a\nb" },
    failures: [{ property: "comment", reason: 'comment must be one line of text (got "a\\nb")' }],
  },
];

for (const row of checkTable) {
  test(`check: ${row.title}`, async (t) => {
    t.deepEqual(checkLabSecretsInputs(row.news), row.failures);
    const provider = await engineProvider();
    const result = await provider.check?.(INPUTS, row.news as LabSecretsInputs);
    t.deepEqual(result, { inputs: row.news, failures: row.failures });
  });
}

test("hostKeysDiffer and mergeHostKeys compare and merge by node name", (t) => {
  const olds = { hostPublicKeys: { a: "pa", b: "pb" }, hostPrivateKeys: { a: "sa", b: "sb" } };
  t.false(hostKeysDiffer(olds, ["b", "a"]));
  t.true(hostKeysDiffer(olds, ["a"]));
  t.true(hostKeysDiffer({ hostPublicKeys: { a: "pa" }, hostPrivateKeys: {} }, ["a"]));
  const generated: string[] = [];
  const merged = mergeHostKeys(olds, ["b", "c"], (n) => {
    generated.push(n);
    return { publicKey: `p${n}`, privateKey: `s${n}` };
  });
  t.deepEqual(generated, ["c"]);
  t.deepEqual(merged, { hostPublicKeys: { b: "pb", c: "pc" }, hostPrivateKeys: { b: "sb", c: "sc" } });
});

test("the secret outputs are the private keys and the token", (t) => {
  t.deepEqual([...LAB_SECRET_OUTPUTS], ["sshPrivateKey", "hostPrivateKeys", "k3sToken"]);
});
