/**
 * The state backend and secrets passphrase, chosen exactly as scripts/lab.sh chooses them, so
 * `compare` and `npm run lab -- … <stack>` see the same stacks.
 */
import { promises as fs } from "node:fs";
import { randomBytes } from "node:crypto";
import * as path from "node:path";

/** The environment for Pulumi commands, and what was decided (for the terminal). */
export interface BackendEnv {
  /** Variables to pass to the Pulumi CLI (in addition to the inherited environment). */
  readonly envVars: Record<string, string>;
  /** The backend URL in use. */
  readonly backendUrl: string;
  /** Where the passphrase comes from, for the summary (never the passphrase itself). */
  readonly passphraseSource: string;
  /** Set when this call generated a new passphrase file. */
  readonly generatedPassphraseFile?: string;
}

/**
 * `PULUMI_BACKEND_URL` if set, else `file://<repo>/.pulumi-state`. The passphrase:
 * `PULUMI_CONFIG_PASSPHRASE` (even empty) or `PULUMI_CONFIG_PASSPHRASE_FILE` if set, else
 * `<repo>/.pulumi-state/passphrase`, generated once (24 random bytes, base64, mode 0600) like
 * scripts/lab.sh does. Keep that file: without it neither the secrets nor `destroy` work.
 */
export async function labBackend(repo: string, env: NodeJS.ProcessEnv = process.env): Promise<BackendEnv> {
  const state = path.join(repo, ".pulumi-state");
  const envVars: Record<string, string> = {};
  const backendUrl = nonEmpty(env.PULUMI_BACKEND_URL) ?? `file://${state}`;
  if (backendUrl.startsWith(`file://${state}`)) {
    await fs.mkdir(state, { recursive: true });
  }
  envVars.PULUMI_BACKEND_URL = backendUrl;
  // The chosen variable is passed on explicitly, so `env` alone decides even when it is not process.env.
  if (env.PULUMI_CONFIG_PASSPHRASE !== undefined) {
    envVars.PULUMI_CONFIG_PASSPHRASE = env.PULUMI_CONFIG_PASSPHRASE;
    return { envVars, backendUrl, passphraseSource: "PULUMI_CONFIG_PASSPHRASE" };
  }
  const given = nonEmpty(env.PULUMI_CONFIG_PASSPHRASE_FILE);
  if (given !== undefined) {
    envVars.PULUMI_CONFIG_PASSPHRASE_FILE = given;
    return { envVars, backendUrl, passphraseSource: `PULUMI_CONFIG_PASSPHRASE_FILE (${given})` };
  }
  await fs.mkdir(state, { recursive: true });
  const file = path.join(state, "passphrase");
  let generated = false;
  const existing = await fs.stat(file).catch(() => undefined);
  if (existing === undefined || existing.size === 0) {
    // Same recipe as scripts/lab.sh: `head -c 24 /dev/urandom | base64` with umask 077.
    await fs.writeFile(file, `${randomBytes(24).toString("base64")}\n`, { mode: 0o600 });
    generated = true;
  }
  envVars.PULUMI_CONFIG_PASSPHRASE_FILE = file;
  return {
    envVars,
    backendUrl,
    passphraseSource: `${file} (keep it: without it the stack's secrets and destroy do not work)`,
    ...(generated ? { generatedPassphraseFile: file } : {}),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
