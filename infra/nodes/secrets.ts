/**
 * `LabSecrets`: the stack's generated credentials, made once and kept in Pulumi state as secrets.
 *
 * - the SSH key pair our clients (and later layers' `remote.Command`s) log in with,
 * - one ed25519 SSH host key pair per node, injected by cloud-init so clients pin the host key,
 * - the k3s cluster token (32 random bytes, hex).
 *
 * Why a dynamic resource: the values must survive every later `up` unchanged. A value computed in
 * the program would change on each run; the state of a resource does not. `diff` reports no
 * change while the node names are the same, and adding or removing a node is an **update** that
 * copies every existing key from the old state and generates only the new node's host key — the
 * user key, the token and the other nodes' host keys are never regenerated. Nothing outside the
 * state exists, so `read` returns the state as is and `delete` has nothing to remove.
 *
 * Secrets: private keys and the token are outputs without a same-named input, so the resource sets
 * `additionalSecretOutputs` (pulumi/pulumi `provider_plugin.go` `annotateSecrets` re-marks only
 * same-named inputs). Mocks ignore that option; the component wraps the values in `pulumi.secret`.
 */
import { randomBytes } from "node:crypto";

import * as pulumi from "@pulumi/pulumi";

import { defineProvider, dynamicResource } from "../provider";
import { generateEd25519KeyPair, type SshKeyPair } from "./ssh-keys";

/** Arguments of {@link LabSecrets}. */
export interface LabSecretsArgs {
  /** Node names (`node-1`…) that get a host key each. Adding one later generates only its key. */
  readonly nodes: pulumi.Input<pulumi.Input<string>[]>;
  /** Comment on every generated key, e.g. `cilium-lab-<stack>`: shows whose key a line is. */
  readonly comment: pulumi.Input<string>;
}

/** The provider's inputs. */
export type LabSecretsInputs = pulumi.Unwrap<LabSecretsArgs>;

/** The provider's outputs (state). */
export interface LabSecretsOutputs extends LabSecretsInputs {
  readonly sshPublicKey: string;
  /** Secret. */
  readonly sshPrivateKey: string;
  /** Node name → `ssh-ed25519 …` host public key line. */
  readonly hostPublicKeys: Readonly<Record<string, string>>;
  /** Node name → OpenSSH host private key. Secret. */
  readonly hostPrivateKeys: Readonly<Record<string, string>>;
  /** Secret. */
  readonly k3sToken: string;
}

/** Output keys that hold secrets; also the resource's `additionalSecretOutputs`. */
export const LAB_SECRET_OUTPUTS = ["sshPrivateKey", "hostPrivateKeys", "k3sToken"] as const;

const NODE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Problems with the inputs, one entry per property (empty when valid). */
export function checkLabSecretsInputs(news: Partial<LabSecretsInputs>): pulumi.dynamic.CheckFailure[] {
  const failures: pulumi.dynamic.CheckFailure[] = [];
  const nodes = news.nodes;
  if (!Array.isArray(nodes) || nodes.length === 0) {
    failures.push({
      property: "nodes",
      reason: `nodes must list at least one node name (got ${JSON.stringify(nodes)})`,
    });
  } else {
    const bad = nodes.filter((n) => typeof n !== "string" || !NODE_NAME.test(n));
    if (bad.length > 0) {
      failures.push({
        property: "nodes",
        reason: `node names must be DNS labels such as node-1 (got ${JSON.stringify(bad)})`,
      });
    }
    const dupes = nodes.filter((n, i) => nodes.indexOf(n) !== i);
    if (dupes.length > 0) {
      failures.push({
        property: "nodes",
        reason: `node names must be unique (duplicated: ${JSON.stringify([...new Set(dupes)])})`,
      });
    }
  }
  if (typeof news.comment !== "string" || /[\r\n]/.test(news.comment)) {
    failures.push({
      property: "comment",
      reason: `comment must be one line of text (got ${JSON.stringify(news.comment)})`,
    });
  }
  return failures;
}

/** True when the state lacks a host key for some wanted node or holds one for a removed node. */
export function hostKeysDiffer(
  olds: Pick<LabSecretsOutputs, "hostPublicKeys" | "hostPrivateKeys">,
  nodes: readonly string[],
): boolean {
  const want = [...nodes].sort();
  const havePub = Object.keys(olds.hostPublicKeys ?? {}).sort();
  const havePriv = Object.keys(olds.hostPrivateKeys ?? {}).sort();
  return JSON.stringify(want) !== JSON.stringify(havePub) || JSON.stringify(want) !== JSON.stringify(havePriv);
}

/**
 * The host keys for `nodes`: kept from `olds` where present, made by `generate` for the others.
 * Removed nodes' keys are dropped.
 */
export function mergeHostKeys(
  olds: Partial<Pick<LabSecretsOutputs, "hostPublicKeys" | "hostPrivateKeys">>,
  nodes: readonly string[],
  generate: (node: string) => SshKeyPair,
): Pick<LabSecretsOutputs, "hostPublicKeys" | "hostPrivateKeys"> {
  const hostPublicKeys: Record<string, string> = {};
  const hostPrivateKeys: Record<string, string> = {};
  for (const node of nodes) {
    const pub = olds.hostPublicKeys?.[node];
    const priv = olds.hostPrivateKeys?.[node];
    const pair = pub !== undefined && priv !== undefined ? { publicKey: pub, privateKey: priv } : generate(node);
    hostPublicKeys[node] = pair.publicKey;
    hostPrivateKeys[node] = pair.privateKey;
  }
  return { hostPublicKeys, hostPrivateKeys };
}

/** The key comment of a node's host key: `<comment>-<node>`. */
export function hostKeyComment(comment: string, node: string): string {
  return `${comment}-${node}`;
}

/**
 * The state for `nodes`: the comment, user key and token of `base`, its host keys for the nodes it
 * has, a new host key for each other node; removed nodes' keys are dropped.
 */
function secretsFor(
  nodes: readonly string[],
  base: Pick<LabSecretsOutputs, "comment" | "sshPublicKey" | "sshPrivateKey" | "k3sToken"> &
    Partial<Pick<LabSecretsOutputs, "hostPublicKeys" | "hostPrivateKeys">>,
): LabSecretsOutputs {
  const hosts = mergeHostKeys(base, nodes, (node) => generateEd25519KeyPair(hostKeyComment(base.comment, node)));
  return {
    nodes: [...nodes],
    comment: base.comment,
    sshPublicKey: base.sshPublicKey,
    sshPrivateKey: base.sshPrivateKey,
    ...hosts,
    k3sToken: base.k3sToken,
  };
}

/** The provider; one module-level instance so its serialized text is cached. */
export const labSecretsProvider = defineProvider<LabSecretsInputs, LabSecretsOutputs>({
  check: (news) => ({ inputs: news, failures: checkLabSecretsInputs(news) }),
  // Never replaced. Only the node set matters; the comment is cosmetic and never regenerates anything.
  replaceKeys: [],
  updateKeys: [],
  deleteBeforeReplace: false,
  needsUpdate: (olds, news) => hostKeysDiffer(olds, news.nodes),

  create(inputs: LabSecretsInputs) {
    const user = generateEd25519KeyPair(inputs.comment);
    const outs = secretsFor(inputs.nodes, {
      comment: inputs.comment,
      sshPublicKey: user.publicKey,
      sshPrivateKey: user.privateKey,
      k3sToken: randomBytes(32).toString("hex"),
    });
    return Promise.resolve({ id: `lab-secrets-${randomBytes(8).toString("hex")}`, outs });
  },

  update(_id: string, olds: LabSecretsOutputs, news: LabSecretsInputs) {
    // Everything existing is copied from the old state; only new nodes get a fresh host key.
    return Promise.resolve({ outs: secretsFor(news.nodes, olds) });
  },
  // read: the state is the only copy, there is nothing else to compare with; delete: nothing outside the state.
});

/** The stack's SSH keys and k3s token (see the module comment). */
export const LabSecrets = dynamicResource<LabSecretsArgs, LabSecretsOutputs>(
  labSecretsProvider,
  { module: "lab", type: "LabSecrets" },
  {
    outputs: ["sshPublicKey", "sshPrivateKey", "hostPublicKeys", "hostPrivateKeys", "k3sToken"],
    secretOutputs: LAB_SECRET_OUTPUTS,
  },
);
export type LabSecrets = InstanceType<typeof LabSecrets>;
