/**
 * `npm run lab -- up <stack>` (scripts/recover.ts `up`, which lab.sh runs): `pulumi up`, made to
 * complete when node-1's VM is replaced inside it.
 *
 * A config change that replaces the server's domain reinstalls k3s in the middle of the `up`: the URL
 * stays, the cluster behind it is new (new CA, empty etcd). The Kubernetes provider is replaced with
 * the new kubeconfig, and the Release's delete-before-replace goes through the old provider to a
 * server that no longer trusts it, so the `up` fails (`can't delete Helm Release with unreachable
 * cluster`). The judgement lab.sh makes before an `up` (replaced.ts) ran while the old cluster still
 * answered, so it kept them, rightly.
 *
 * So: before the `up`, the same judgement as before (`prepare`). When the `up` fails, judge the state
 * it left once more, without a refresh (`check-state`). Only when that dropped Kubernetes objects of a
 * replaced cluster (their provider's CA no longer signs the server's certificate, or their server VM
 * is gone from state) does the `up` run once more, once, saying why; anything else is returned as it
 * was: a failure on a cluster that answers with its own CA, a check that itself fails, a Ctrl-C, and
 * an `up` ended by a signal (a killed `up` leaves the stack locked: `npm run lab -- recover`).
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";

import { dropReplaced, type WhenDown } from "./replaced";

/** `up --refresh`, `up -r`, `up --refresh=true` and `refresh` refresh the stack before they act. */
export function refreshes(command: string, flags: readonly string[]): boolean {
  return (
    command === "refresh" ||
    flags.includes("--refresh") ||
    flags.includes("-r") ||
    flags.some((f) => f.startsWith("--refresh=") && f !== "--refresh=false")
  );
}

/** What lab.sh does about a cluster that does not answer, before `command` with `flags`. */
export function whenDownBefore(command: string, flags: readonly string[]): WhenDown {
  return refreshes(command, flags) ? "refresh-then-check" : "keep";
}

/** The exit status of a process that exited with `code` or was ended by `signal` (128 + its number, as a shell reports it). */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? 128 + (signal === null ? 0 : constants.signals[signal]);
}

interface Run {
  /** The exit status, as a shell reports it. */
  readonly status: number;
  /** Ended by a signal, or this process was asked to stop meanwhile: never retried. */
  readonly stopped: boolean;
}

/**
 * One `pulumi up`, its terminal inherited. A SIGTERM or SIGHUP sent to this process is passed on. A
 * SIGINT is not: Ctrl-C reaches pulumi from the terminal itself, and a second one would be its hard
 * abort; it only marks the run as stopped.
 */
function pulumiUp(stack: string, flags: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    let asked = false;
    const child = spawn("pulumi", ["up", "--stack", stack, ...flags], { stdio: "inherit" });
    const onInt = (): void => {
      asked = true;
    };
    const pass = (signal: NodeJS.Signals): void => {
      asked = true;
      child.kill(signal);
    };
    process.on("SIGINT", onInt);
    process.on("SIGTERM", pass);
    process.on("SIGHUP", pass);
    const done = (): void => {
      process.removeListener("SIGINT", onInt);
      process.removeListener("SIGTERM", pass);
      process.removeListener("SIGHUP", pass);
    };
    child.once("error", (error) => {
      done();
      reject(new Error(`could not run pulumi up: ${error.message}`, { cause: error }));
    });
    child.once("exit", (code, signal) => {
      done();
      resolve({ status: exitStatus(code, signal), stopped: asked || signal !== null });
    });
  });
}

/** `pulumi up` for lab.sh, once more after a replaced cluster (see the module comment); returns its exit status. */
export async function upWithRetry(stack: string, flags: readonly string[]): Promise<number> {
  await dropReplaced(stack, whenDownBefore("up", flags));
  const first = await pulumiUp(stack, flags);
  if (first.status === 0 || first.stopped) {
    return first.status;
  }
  let dropped: number;
  try {
    dropped = await dropReplaced(stack, "check-state");
  } catch (error) {
    process.stderr.write(
      `scripts/lab.sh: up failed, and checking whether its cluster was replaced failed too: ${(error as Error).message}\n`,
    );
    return first.status;
  }
  if (dropped === 0) {
    return first.status;
  }
  process.stderr.write(
    "scripts/lab.sh: up failed on Kubernetes objects of a cluster replaced during it (dropped from state above); running up once more to create them on the new cluster\n",
  );
  return (await pulumiUp(stack, flags)).status;
}
