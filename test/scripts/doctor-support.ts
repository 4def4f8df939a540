/**
 * What the doctor tests share: default config, injected command results and host facts, a scratch
 * dir, and local HTTP servers on 127.0.0.1 (nothing here contacts a public host).
 */
import { mkdtempSync, rmSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";

import type { ExecutionContext } from "ava";

import { parseLabConfig } from "../../infra/config";
import { labPreflightRequest, type HostFacts } from "../../infra/libvirt/preflight";
import { IMAGE_CACHE_DIR, POOL_DIR } from "../support/preflight-facts";
import type { CommandResult } from "../../scripts/doctor/rows";

export const DEFAULTS = parseLabConfig({}).config;
export const VERSION: CommandResult = { code: 0, stdout: "v3.250.0\n", stderr: "" };
export const NONE_INSTALLED: CommandResult = { code: 0, stdout: "[]\n", stderr: "" };
export const COMMAND = { name: "command", version: "1.2.1" };

export function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), "cl-doctor-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A local HTTP server answering every request with `status` (and a Location for 3xx). */
export async function server(t: ExecutionContext, status: number, location?: string): Promise<string> {
  const s = http.createServer((_req, res) => {
    res.writeHead(status, location !== undefined ? { location } : {});
    res.end("x");
  });
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

/** A port that was just free: nothing listens on it. */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Air-gapped, so the preflight's firewall check (for online installs) is not part of these facts. */
const AIRGAPPED = { ...DEFAULTS, k3sAirgapDir: "/srv/k3s" };
export const REQUEST = labPreflightRequest(
  AIRGAPPED,
  {
    networkName: "cilium-lab-vxlan",
    bridgeName: "cl-vxlan-1a2b",
    nodes: [1, 2, 3].map((n) => ({ domainName: `cilium-lab-vxlan-node-${n}` })),
  },
  "vxlan",
  { poolDir: POOL_DIR, imageCacheDir: IMAGE_CACHE_DIR },
);

export function facts(overrides: Partial<HostFacts> = {}): HostFacts {
  return {
    missingTools: [],
    libvirt: { reachable: true, networks: [], domains: [] },
    routes: [],
    links: ["lo"],
    kvm: { usable: true, detail: "" },
    memAvailableMiB: 20_000,
    cpus: 8,
    disks: REQUEST.disks.map((d) => ({ path: d.path, freeBytes: 100 * 1024 ** 3 })),
    ...overrides,
  };
}
