/**
 * The processes of a test control plane (test/support/control-plane.ts): started with their logs in
 * the control plane's temp dir, ended by PID, and never left behind. `stop()` ends each (TERM, then
 * KILL after 10 s) and removes the dir; a process exit or a terminating signal KILLs them and removes
 * the dir synchronously.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import * as path from "node:path";

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a process with this PID exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export type ComponentName = "etcd" | "kube-apiserver" | "kube-controller-manager";

export interface Components {
  /** Starts `file` as `name`, its stdout and stderr appended to `<dir>/<name>.log`; `fix` ends the error when it does not start. */
  readonly launch: (name: ComponentName, file: string, args: string[], fix: string) => void;
  /** The first component that has exited, with its code or signal and log tail; undefined while all run. */
  readonly exited: () => string | undefined;
  readonly pid: (name: ComponentName) => number;
  readonly logTail: (name: ComponentName, lines?: number) => string;
  /** Ends every process by PID (TERM, then KILL after 10 s), last started first, and removes the dir. Idempotent. */
  readonly stop: () => Promise<void>;
}

/** The processes of one control plane living in `dir`; see the module comment. */
export function components(dir: string): Components {
  const children = new Map<ComponentName, ChildProcess>();
  let stopped = false;

  const killAllNow = (): void => {
    for (const child of children.values()) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // On exit only synchronous work runs: KILL by PID and remove the directory. A terminating signal
  // (ava ends a timed-out worker with SIGTERM: ava 7 lib/api.js calls worker.exit(), lib/fork.js
  // then worker.kill(); Ctrl+C sends SIGINT) emits no "exit" event, so those
  // do the same and then re-raise the signal with its default action (no other listener left).
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const onSignal = (signal: NodeJS.Signals): void => {
    killAllNow();
    unhook();
    process.kill(process.pid, signal);
  };
  const unhook = (): void => {
    process.removeListener("exit", killAllNow);
    for (const signal of signals) {
      process.removeListener(signal, onSignal);
    }
  };
  process.once("exit", killAllNow);
  for (const signal of signals) {
    process.on(signal, onSignal);
  }

  const logTail = (name: ComponentName, lines = 30): string => {
    try {
      return readFileSync(path.join(dir, `${name}.log`), "utf8")
        .trimEnd()
        .split("\n")
        .slice(-lines)
        .join("\n");
    } catch {
      return "(no log)";
    }
  };

  const stop = async (): Promise<void> => {
    if (stopped) {
      return;
    }
    stopped = true;
    // Reverse start order: the controller-manager and apiserver first, etcd (their store) last.
    for (const child of [...children.values()].reverse()) {
      const pid = child.pid;
      if (pid === undefined || !alive(pid)) {
        continue;
      }
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      process.kill(pid, "SIGTERM");
      if (await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])) {
        continue;
      }
      process.kill(pid, "SIGKILL");
      await exited;
    }
    unhook();
    rmSync(dir, { recursive: true, force: true });
  };

  const launch = (name: ComponentName, file: string, args: string[], fix: string): void => {
    const log = openSync(path.join(dir, `${name}.log`), "a");
    const child = spawn(file, args, { cwd: dir, stdio: ["ignore", log, log] });
    closeSync(log);
    if (child.pid === undefined) {
      throw new Error(`${name} (${file}) did not start; is the path right? ${fix}`);
    }
    children.set(name, child);
  };

  const exited = (): string | undefined => {
    for (const [name, child] of children) {
      if (child.exitCode !== null || child.signalCode !== null) {
        return `${name} exited (${child.exitCode ?? child.signalCode}) while the control plane started; its log:\n${logTail(name)}`;
      }
    }
    return undefined;
  };

  return { launch, exited, pid: (name) => children.get(name)?.pid ?? -1, logTail, stop };
}
