/**
 * Small helpers for tests of every tier, with nothing heavy behind them (no engine, VM, daemon or
 * root): the repository's root, a temp directory removed when the test ends, a free loopback port.
 * Pure and mock suites take them from here, not from the heavy support modules (the tier rule,
 * test/tiers.test.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

import type { ExecutionContext } from "ava";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** A temp directory removed when the test ends (pass or fail). */
export function tempDir(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `cilium-lab-${prefix}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A free TCP port on 127.0.0.1 (the kernel picks it; it is released before it is handed out). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address !== null
          ? resolve(address.port)
          : reject(new Error(`no port in ${String(address)}`)),
      );
    });
  });
}
