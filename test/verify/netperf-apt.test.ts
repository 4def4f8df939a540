/**
 * How CI gets netperf: Debian ships it in the non-free component (bookworm: netperf 2.7.0-0.1),
 * which a default install does not enable. .ci/apt-component.sh adds that component from the archive
 * apt already uses for the release, in the same source format, and changes nothing on a second run.
 * Run here against sources laid out in a temporary directory (APT_ETC, OS_RELEASE), as an ordinary
 * user: the layouts are those of Debian 12's deb822 `debian.sources`, a classic one-line
 * `sources.list`, and Ubuntu 24.04's `ubuntu.sources`.
 */
import test, { type ExecutionContext } from "ava";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

import { REPO, run } from "./support";

const SCRIPT = path.join(REPO, ".ci", "apt-component.sh");

const BOOKWORM = "ID=debian\nVERSION_CODENAME=bookworm\n";
const NOBLE = "ID=ubuntu\nVERSION_CODENAME=noble\n";

const DEBIAN_SOURCES = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

/** A fresh apt directory with `files` (relative to it), and os-release; removed when test `t` ends. */
function layout(
  t: ExecutionContext,
  osRelease: string,
  files: Record<string, string>,
): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(path.join(tmpdir(), "cl-apt-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, "sources.list.d"));
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(path.join(dir, name), text);
  }
  writeFileSync(path.join(dir, "os-release"), osRelease);
  return { dir, env: { ...process.env, APT_ETC: dir, OS_RELEASE: path.join(dir, "os-release") } };
}

async function component(env: NodeJS.ProcessEnv, ...args: string[]) {
  const r = await run("bash", [SCRIPT, ...args], { env });
  return { code: r.code, out: r.stdout.trim(), err: r.stderr.trim() };
}

/** Runs the script in `apt`, which must say it added sources.list.d/`name`; returns what it wrote there. */
async function added(t: ExecutionContext, apt: { dir: string; env: NodeJS.ProcessEnv }, name: string): Promise<string> {
  const file = path.join(apt.dir, "sources.list.d", name);
  t.deepEqual(await component(apt.env), { code: 0, out: `added: ${file}`, err: "" });
  return readFileSync(file, "utf8");
}

test("deb822 Debian: non-free from the same archive, suites and key; the security archive is not copied; idempotent", async (t) => {
  const apt = layout(t, BOOKWORM, { "sources.list.d/debian.sources": DEBIAN_SOURCES });
  t.is(
    await added(t, apt, "cilium-lab-non-free.sources"),
    [
      "# Written by cilium-lab's .ci/apt-component.sh: the non-free component of http://deb.debian.org/debian (bookworm).",
      "Types: deb",
      "URIs: http://deb.debian.org/debian",
      "Suites: bookworm bookworm-updates",
      "Components: non-free",
      "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
      "",
      "",
    ].join("\n"),
  );
  t.deepEqual(await component(apt.env), {
    code: 0,
    out: "present: non-free http://deb.debian.org/debian bookworm",
    err: "",
  });
  t.is(readFileSync(path.join(apt.dir, "sources.list.d", "debian.sources"), "utf8"), DEBIAN_SOURCES);
});

test("one-line sources.list: a .list with the same options and suites, non-free only", async (t) => {
  const apt = layout(t, BOOKWORM, {
    "sources.list": [
      "# deb cdrom:[Debian GNU/Linux 12]/ bookworm main",
      "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://ftp.de.debian.org/debian bookworm main contrib",
      "deb http://ftp.de.debian.org/debian bookworm-updates main",
      "deb http://security.debian.org/debian-security bookworm-security main",
      "deb-src http://ftp.de.debian.org/debian bookworm main",
      "",
    ].join("\n"),
  });
  t.is(
    await added(t, apt, "cilium-lab-non-free.list"),
    [
      "# Written by cilium-lab's .ci/apt-component.sh: the non-free component of http://ftp.de.debian.org/debian (bookworm).",
      "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://ftp.de.debian.org/debian bookworm non-free",
      "deb http://ftp.de.debian.org/debian bookworm-updates non-free",
      "",
    ].join("\n"),
  );
  t.is((await component(apt.env)).out, "present: non-free http://ftp.de.debian.org/debian bookworm");
});

test("non-free already enabled: nothing is written; a disabled stanza does not count", async (t) => {
  const enabled = layout(t, BOOKWORM, {
    "sources.list.d/debian.sources": DEBIAN_SOURCES.replace("Components: main", "Components: main non-free"),
  });
  const disabled = layout(t, BOOKWORM, {
    "sources.list.d/debian.sources": DEBIAN_SOURCES,
    "sources.list.d/old.sources":
      "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: non-free\nEnabled: no\n",
  });
  t.deepEqual(await component(enabled.env), {
    code: 0,
    out: "present: non-free http://deb.debian.org/debian bookworm",
    err: "",
  });
  t.false(existsSync(path.join(enabled.dir, "sources.list.d", "cilium-lab-non-free.sources")));
  t.regex((await component(disabled.env)).out, /^added: .*cilium-lab-non-free\.sources$/);
});

test("Ubuntu: multiverse by default, from its deb822 ubuntu.sources", async (t) => {
  const { dir, env } = layout(t, NOBLE, {
    "sources.list.d/ubuntu.sources": [
      "Types: deb",
      "URIs: http://archive.ubuntu.com/ubuntu/",
      "Suites: noble noble-updates noble-backports",
      "Components: main restricted universe",
      "Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg",
      "",
      "Types: deb",
      "URIs: http://security.ubuntu.com/ubuntu/",
      "Suites: noble-security",
      "Components: main restricted universe",
      "Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg",
      "",
    ].join("\n"),
  });
  const r = await component(env);
  t.is(r.code, 0, r.err);
  t.regex(
    readFileSync(path.join(dir, "sources.list.d", "cilium-lab-multiverse.sources"), "utf8"),
    /\nURIs: http:\/\/archive\.ubuntu\.com\/ubuntu\/\nSuites: noble noble-updates noble-backports\nComponents: multiverse\n/,
  );
});

test("no source for the release: exit 1 with what to do", async (t) => {
  const { dir, env } = layout(t, BOOKWORM, {
    "sources.list.d/other.sources":
      "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n",
  });
  t.deepEqual(await component(env), {
    code: 1,
    out: "",
    err: `[apt-component] error: no enabled deb source for bookworm in ${dir}/sources.list or ${dir}/sources.list.d/. Fix: add the debian archive for bookworm with the non-free component by hand.`,
  });
});
