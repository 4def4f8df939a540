/**
 * The stack as scripts/recover.ts sees it, through the pulumi CLI: its `kubeconfig` output, its state
 * (`pulumi stack export`), which resources in it are a Kubernetes cluster's, and dropping those from
 * state. Secrets are read with `--show-secrets` and never printed: a failing command's stdout is never
 * echoed.
 */
import { execFileSync } from "node:child_process";

export function pulumi(args: string[], env: NodeJS.ProcessEnv = process.env, inherit = false): string {
  try {
    return (
      execFileSync("pulumi", args, {
        env,
        encoding: "utf8",
        stdio: ["ignore", inherit ? "inherit" : "pipe", inherit ? "inherit" : "pipe"],
        maxBuffer: 256 * 1024 * 1024,
      }) ?? ""
    );
  } catch (error) {
    const e = error as { status?: number; stderr?: string };
    // Never echo stdout: it may hold the kubeconfig.
    throw new Error(
      `pulumi ${args.filter((a) => a !== "--show-secrets").join(" ")} exited ${e.status ?? "?"}: ${(e.stderr ?? "").trim()}`,
      { cause: error },
    );
  }
}

/** The stack's kubeconfig output, or undefined when the stack has none yet (never printed). */
export function stackKubeconfig(stack: string): string | undefined {
  let out: string;
  try {
    out = pulumi(["stack", "output", "--stack", stack, "--json", "--show-secrets"]);
  } catch {
    return undefined; // a stack never deployed has no outputs
  }
  const outputs = JSON.parse(out || "{}") as { kubeconfig?: unknown };
  return typeof outputs.kubeconfig === "string" && outputs.kubeconfig !== "" ? outputs.kubeconfig : undefined;
}

/** One resource of `pulumi stack export` (the fields recovery reads). */
export interface StateResource {
  urn: string;
  type: string;
  id?: string;
  provider?: string;
  deletedWith?: string;
  inputs?: Record<string, unknown>;
}

/** The stack's resources; with `showSecrets`, secret inputs as `{…, plaintext}` (see {@link secretString}). */
export function stateResources(stack: string, showSecrets = false): StateResource[] {
  const args = ["stack", "export", "--stack", stack, ...(showSecrets ? ["--show-secrets"] : [])];
  const state = JSON.parse(pulumi(args)) as { deployment?: { resources?: StateResource[] } };
  return state.deployment?.resources ?? [];
}

/** Resources managed through a `kubernetes` provider (not the providers themselves). */
export function kubernetesResources(resources: readonly StateResource[]): StateResource[] {
  return resources.filter((r) => (r.provider ?? "").includes("::pulumi:providers:kubernetes::"));
}

/**
 * A string input as `pulumi stack export --show-secrets` writes it: plain, or a secret
 * `{"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "plaintext": "<the value as JSON>"}`
 * (pulumi sdk/go/common/apitype/core.go `SecretV1`). Undefined for anything else, or an empty string.
 */
export function secretString(value: unknown): string | undefined {
  let plain: unknown = value;
  const plaintext = (value as { plaintext?: unknown } | null)?.plaintext;
  if (typeof plaintext === "string") {
    try {
      plain = JSON.parse(plaintext);
    } catch {
      return undefined;
    }
  }
  return typeof plain === "string" && plain !== "" ? plain : undefined;
}

/** The Kubernetes resources of one provider in state, and the kubeconfig that provider holds. */
export interface ProviderGroup {
  /** The provider reference the resources carry: `<provider urn>::<provider id>`. */
  readonly ref: string;
  /** The provider's `kubeconfig` input; undefined when it has none (an ambient kubeconfig: never judged). */
  readonly kubeconfig: string | undefined;
  readonly resources: StateResource[];
}

/** The Kubernetes resources of `resources`, by the provider (URN and ID) that manages each. */
export function providerGroups(resources: readonly StateResource[]): ProviderGroup[] {
  const byRef = new Map<string, StateResource[]>();
  for (const r of kubernetesResources(resources)) {
    const ref = r.provider ?? "";
    byRef.set(ref, [...(byRef.get(ref) ?? []), r]);
  }
  return [...byRef].map(([ref, members]) => {
    const provider = resources.find((p) => `${p.urn}::${p.id ?? ""}` === ref);
    return { ref, kubeconfig: secretString(provider?.inputs?.kubeconfig), resources: members };
  });
}

/**
 * Drops `urns` from the stack's state, saying why: a refresh of just those under
 * PULUMI_K8S_DELETE_UNREACHABLE=true. Read of an unreachable cluster's object then answers "deleted",
 * so the refresh drops it (pulumi-kubernetes provider/pkg/provider/provider.go Read,
 * `deleteUnreachable`); an object its provider still reaches is read as usual and stays. The Provider
 * in infra/index.ts sets no `deleteUnreachable` input, so this variable decides.
 */
export function dropFromState(stack: string, urns: string[], why: string): void {
  const unique = [...new Set(urns)];
  if (unique.length === 0) {
    return;
  }
  process.stderr.write(
    `scripts/lab.sh: ${why}; dropping ${unique.length} Kubernetes resource(s) from state (they went with the old cluster):\n${unique.map((u) => `  ${u}\n`).join("")}`,
  );
  pulumi(
    ["refresh", "--stack", stack, "--yes", "--skip-preview", ...unique.flatMap((u) => ["--target", u])],
    { ...process.env, PULUMI_K8S_DELETE_UNREACHABLE: "true" },
    true,
  );
}
