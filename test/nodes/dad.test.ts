/**
 * The duplicate-address check as the nodes get it: the bootcmd entry in user-data (exact argv, and
 * the real `cloud-init schema` accepts it), and the console line as the boot wait parses it. The probe itself runs for
 * real in dad.netns.test.ts.
 */
import test from "ava";
import { execFile } from "node:child_process";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import YAML from "yaml";

import { renderUserData } from "../../infra/nodes/cloud-init";
import { findDadConflict, type DadConflict } from "../../infra/libvirt/domain";
import { DAD_CONFLICT_MARKER, DAD_SCRIPT, dadBootcmd } from "../../infra/nodes/dad";
import { generateEd25519KeyPair } from "../../infra/nodes/ssh-keys";

const execFileAsync = promisify(execFile);
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDUW+Wbd5fCA1bFpjAUABqV9FcB6EDy9r6yQSr+rgS1i cilium-lab-t";

function userData(check?: { address: string; mac: string }): string {
  return renderUserData({
    hostname: "node-2",
    authorizedKeys: [KEY],
    hostKey: generateEd25519KeyPair("node-2"),
    duplicateAddressCheck: check,
  });
}

test("bridge-mode user-data runs the check from bootcmd, powering off on a conflict, printing to both consoles", (t) => {
  const parsed = YAML.parse(userData({ address: "192.0.2.12", mac: "52:54:00:AB:00:02" }), { version: "1.1" }) as {
    bootcmd: string[][];
  };
  t.deepEqual(parsed.bootcmd, [
    ["python3", "-c", DAD_SCRIPT, "--poweroff", "192.0.2.12", "52:54:00:ab:00:02", "/dev/ttyS0", "/dev/console"],
  ]);
  t.deepEqual(dadBootcmd("192.0.2.12", "52:54:00:AB:00:02"), parsed.bootcmd[0]);
});

test("NAT user-data has no bootcmd", (t) => {
  t.false(/^bootcmd:/m.test(userData()));
});

test("cloud-init schema accepts user-data with the check", async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "cl-n-dad-"));
  try {
    const file = path.join(dir, "user-data");
    await fs.writeFile(file, userData({ address: "192.0.2.12", mac: "52:54:00:ab:00:02" }));
    const { stdout } = await execFileAsync("cloud-init", ["schema", "--config-file", file], {
      env: { ...process.env, LC_ALL: "C" },
    });
    t.regex(stdout, /Valid cloud-config/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

// The console parser is the boot wait's own (findDadConflict, infra/libvirt/domain/boot-errors.ts).
const consoleRows: [string, string, DadConflict | undefined][] = [
  [
    "a conflict line among boot messages",
    `[  9.1] cloud-init[480]: Cloud-init v. 23.1 running 'init'\r\n\r\n${DAD_CONFLICT_MARKER} 192.0.2.12 answered by 52:54:00:d4:d0:99\r\n`,
    { address: "192.0.2.12", answeredBy: "52:54:00:d4:d0:99" },
  ],
  ["a console without the line", "[  9.1] reboot: Power down\r\n", undefined],
  ["a cut-off line", `${DAD_CONFLICT_MARKER} 192.0.2.12 answered by 52:54`, undefined],
];
for (const [title, text, expected] of consoleRows) {
  test(`findDadConflict: ${title}`, (t) => {
    t.deepEqual(findDadConflict(text), expected);
  });
}
