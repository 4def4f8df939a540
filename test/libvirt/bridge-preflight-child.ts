/**
 * Run by test/libvirt/bridge-host.libvirt.test.ts as the unprivileged test user (runuser):
 * `node --import tsx test/libvirt/bridge-preflight-child.ts <json request>` gathers the host facts
 * and prints the preflight's verdict as one JSON line `{ problems, warnings, rows }`.
 */
import { evaluatePreflight, gatherHostFacts, type PreflightRequest } from "../../infra/libvirt/preflight";

const req = JSON.parse(process.argv[2] ?? "{}") as PreflightRequest;
process.stdout.write(`${JSON.stringify(evaluatePreflight(req, gatherHostFacts(req)))}\n`);
