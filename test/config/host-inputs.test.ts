/**
 * The host-side inputs of the stack config — air-gap directory, local Cilium chart, custom image
 * file, gpgv and Ubuntu's keyring — checked against real files of this host (chart archives packed
 * by the real `tar`), with the exact problem, fix and one-error message the program prints before
 * anything is created.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

import * as pulumi from "@pulumi/pulumi";
import test, { type ExecutionContext } from "ava";

import { parseLabConfig, type LabConfig } from "../../infra/config";
import {
  assertHostInputs,
  checkHostInputs,
  formatHostInputProblem,
  hostInputChecks,
  HostInputsError,
  type HostInputProblem,
} from "../../infra/config/host-inputs";

const DEFAULTS = parseLabConfig({}).config;
const V = "v1.26.6%2Bk3s1";
const PULL =
  'Fetch it with `helm pull cilium/cilium --version 1.13.4 --destination ./charts` and set cilium-lab:ciliumChart ./charts/cilium-1.13.4.tgz, or set it to "" to use https://helm.cilium.io.';

/** A temp directory removed after the test. */
function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), "cl-host-inputs-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A directory holding a readable keyring file and a `gpgv` stand-in on a PATH of its own. */
function tools(t: ExecutionContext): { keyringPath: string; pathEnv: string } {
  const dir = scratch(t);
  writeFileSync(path.join(dir, "keyring.gpg"), "key");
  mkdirSync(path.join(dir, "bin"));
  writeFileSync(path.join(dir, "bin", "gpgv"), "#!/bin/sh\n", { mode: 0o755 });
  return { keyringPath: path.join(dir, "keyring.gpg"), pathEnv: path.join(dir, "bin") };
}

/** A chart directory `<dir>/<chart>/Chart.yaml` and, packed by the real tar, `<dir>/<archive>`. */
function chart(dir: string, chartYaml: string, archive?: string): string {
  mkdirSync(path.join(dir, "src", "cilium"), { recursive: true });
  writeFileSync(path.join(dir, "src", "cilium", "Chart.yaml"), chartYaml);
  writeFileSync(path.join(dir, "src", "cilium", "values.yaml"), "x: 1\n");
  if (archive !== undefined) {
    execFileSync("tar", ["-czf", path.join(dir, archive), "-C", path.join(dir, "src"), "cilium"]);
  }
  return path.join(dir, "src", "cilium");
}

function config(over: Partial<LabConfig>): LabConfig {
  return { ...DEFAULTS, ...over };
}

test("the defaults need only gpgv and the keyring: the air-gap directory, chart and image file are not used", (t) => {
  const opts = tools(t);
  t.deepEqual(checkHostInputs(DEFAULTS, opts), []);
  t.deepEqual(
    hostInputChecks(DEFAULTS, opts).map((c) => [c.input, c.skipped ?? c.ok]),
    [
      ["k3sAirgapDir", "empty: the nodes download k3s from the internet"],
      ["ciliumChart", "empty: Helm downloads chart 1.13.4 from https://helm.cilium.io"],
      ["imageUrl", "image ubuntu-23.04: downloaded, no host file"],
      ["gpgv and Ubuntu's keyring", `gpgv on PATH, ${opts.keyringPath} readable`],
    ],
  );
});

test("a custom image needs no gpgv: a readable file:// image passes and an https:// one is not a host file", (t) => {
  const dir = scratch(t);
  writeFileSync(path.join(dir, "disk.qcow2"), Buffer.alloc(2 * 1024 * 1024));
  const noTools = { pathEnv: "/nonexistent", keyringPath: "/nonexistent/keyring.gpg" };
  const file = config({ image: "custom", imageUrl: `file://${dir}/disk.qcow2`, imageSha256: "a".repeat(64) });
  t.deepEqual(checkHostInputs(file, noTools), []);
  t.is(hostInputChecks(file, noTools)[2]?.ok, `${dir}/disk.qcow2, 2 MiB`);
  const web = config({ image: "custom", imageUrl: "https://example.invalid/disk.qcow2", imageSha256: "a".repeat(64) });
  t.is(hostInputChecks(web, noTools)[2]?.skipped, "an http(s):// URL: downloaded, no host file");
});

test("a local chart passes as a directory and as a .tgz packed by tar, each of ciliumVersion", (t) => {
  const dir = scratch(t);
  const src = chart(dir, "apiVersion: v2\nname: cilium\nversion: 1.13.4\n", "cilium-1.13.4.tgz");
  const opts = { ...tools(t), cwd: dir };
  t.is(hostInputChecks(config({ ciliumChart: src }), opts)[1]?.ok, `chart cilium 1.13.4 (${src})`);
  t.is(
    hostInputChecks(config({ ciliumChart: "./cilium-1.13.4.tgz" }), opts)[1]?.ok,
    `chart cilium 1.13.4 (${dir}/cilium-1.13.4.tgz)`,
  );
});

/** Each unusable input: the config, files to create under the test's directory, the exact problems. */
const CASES: {
  title: string;
  setup: (dir: string) => Partial<LabConfig>;
  expected: (dir: string) => HostInputProblem[];
}[] = [
  {
    title: "an air-gap directory that does not exist",
    setup: (dir) => ({ k3sAirgapDir: `${dir}/missing` }),
    expected: (dir) => [
      {
        key: "k3sAirgapDir",
        value: `${dir}/missing`,
        problem: `${dir}/missing cannot be read (ENOENT)`,
        fix:
          `Create it and put k3s, install.sh and k3s-airgap-images-amd64.tar.zst in it: Download https://github.com/k3s-io/k3s/releases/download/${V}/k3s (linux amd64) as ${dir}/missing/k3s. ` +
          `Download https://raw.githubusercontent.com/k3s-io/k3s/${V}/install.sh (or https://get.k3s.io) as ${dir}/missing/install.sh. ` +
          `Download https://github.com/k3s-io/k3s/releases/download/${V}/k3s-airgap-images-amd64.tar.zst into ${dir}/missing. ` +
          `(Or set cilium-lab:k3sAirgapDir to "" to install from the internet.)`,
      },
    ],
  },
  {
    title: "an air-gap directory with a text file as k3s and nothing else: every file named with its download URL",
    setup: (dir) => {
      writeFileSync(path.join(dir, "k3s"), "not a binary\n");
      return { k3sAirgapDir: dir };
    },
    expected: (dir) => [
      {
        key: "k3sAirgapDir",
        value: dir,
        problem: 'k3s: not an ELF executable (it starts with "not a bi")',
        fix: `Download https://github.com/k3s-io/k3s/releases/download/${V}/k3s (linux amd64) as ${dir}/k3s. (Or set cilium-lab:k3sAirgapDir to "" to install from the internet.)`,
      },
      {
        key: "k3sAirgapDir",
        value: dir,
        problem: "install.sh: missing",
        fix: `Download https://raw.githubusercontent.com/k3s-io/k3s/${V}/install.sh (or https://get.k3s.io) as ${dir}/install.sh.`,
      },
      {
        key: "k3sAirgapDir",
        value: dir,
        problem: "k3s-airgap-images-amd64.tar.zst: missing (.tar.gz or .tar are accepted too)",
        fix: `Download https://github.com/k3s-io/k3s/releases/download/${V}/k3s-airgap-images-amd64.tar.zst into ${dir}.`,
      },
    ],
  },
  {
    title: "a relative chart path that does not exist, resolved against the project directory",
    setup: () => ({ ciliumChart: "./charts/cilium-1.13.4.tgz" }),
    expected: (dir) => [
      {
        key: "ciliumChart",
        value: "./charts/cilium-1.13.4.tgz",
        problem: `${dir}/charts/cilium-1.13.4.tgz, resolved against ${dir} does not exist`,
        fix: PULL,
      },
    ],
  },
  {
    title: "a chart archive named for another version than ciliumVersion",
    setup: () => ({ ciliumChart: "./cilium-1.14.0.tgz" }),
    expected: () => [
      {
        key: "ciliumChart",
        value: "./cilium-1.14.0.tgz",
        problem: "cilium-lab:ciliumChart ./cilium-1.14.0.tgz is chart 1.14.0 but cilium-lab:ciliumVersion is 1.13.4",
        fix: "Set ciliumVersion to 1.14.0, or fetch the matching chart with `helm pull cilium/cilium --version 1.13.4`.",
      },
    ],
  },
  {
    title: "a chart archive whose Chart.yaml is another version, whatever its file name",
    setup: (dir) => {
      chart(dir, "apiVersion: v2\nname: cilium\nversion: 1.16.0\n", "cilium.tgz");
      return { ciliumChart: `${dir}/cilium.tgz` };
    },
    expected: (dir) => [
      {
        key: "ciliumChart",
        value: `${dir}/cilium.tgz`,
        problem: `${dir}/cilium.tgz is chart cilium 1.16.0 but cilium-lab:ciliumVersion is 1.13.4 (the Helm values are rendered for 1.13.4's key names)`,
        fix: `Set cilium-lab:ciliumVersion to 1.16.0, or fetch it with \`helm pull cilium/cilium --version 1.13.4 --destination ./charts\` and set cilium-lab:ciliumChart ./charts/cilium-1.13.4.tgz, or set it to "" to use https://helm.cilium.io.`,
      },
    ],
  },
  {
    title: "a .tgz that is an HTML error page, not a gzipped chart",
    setup: (dir) => {
      writeFileSync(path.join(dir, "cilium-1.13.4.tgz"), "<html>404</html>");
      return { ciliumChart: `${dir}/cilium-1.13.4.tgz` };
    },
    expected: (dir) => [
      {
        key: "ciliumChart",
        value: `${dir}/cilium-1.13.4.tgz`,
        problem: `${dir}/cilium-1.13.4.tgz is not a gzipped chart archive (.tgz)`,
        fix: PULL,
      },
    ],
  },
  {
    title: "a directory without Chart.yaml",
    setup: (dir) => ({ ciliumChart: dir }),
    expected: (dir) => [
      {
        key: "ciliumChart",
        value: dir,
        problem: `${dir} is a directory without a readable Chart.yaml (ENOENT): not a Helm chart`,
        fix: PULL,
      },
    ],
  },
  {
    title: "a chart directory of another chart",
    setup: (dir) => ({ ciliumChart: chart(dir, "apiVersion: v2\nname: tetragon\nversion: 1.13.4\n") }),
    expected: (dir) => [
      {
        key: "ciliumChart",
        value: `${dir}/src/cilium`,
        problem: `${dir}/src/cilium is chart "tetragon", not cilium`,
        fix: PULL,
      },
    ],
  },
  {
    title: "a file:// image that does not exist",
    setup: (dir) => ({ image: "custom", imageUrl: `file://${dir}/gone.qcow2`, imageSha256: "a".repeat(64) }),
    expected: (dir) => [
      {
        key: "imageUrl",
        value: `file://${dir}/gone.qcow2`,
        problem: `${dir}/gone.qcow2 does not exist`,
        fix: "Point cilium-lab:imageUrl at an existing qcow2 file (file:///path or /path) readable by this user, and set cilium-lab:imageSha256 to its `sha256sum`.",
      },
    ],
  },
  {
    title: "an absolute image path that is a directory",
    setup: (dir) => ({ image: "custom", imageUrl: dir, imageSha256: "a".repeat(64) }),
    expected: (dir) => [
      {
        key: "imageUrl",
        value: dir,
        problem: `${dir} is not a regular file`,
        fix: "Point cilium-lab:imageUrl at an existing qcow2 file (file:///path or /path) readable by this user, and set cilium-lab:imageSha256 to its `sha256sum`.",
      },
    ],
  },
];

for (const c of CASES) {
  test(`refused before anything is created: ${c.title}`, (t) => {
    const dir = scratch(t);
    const over = c.setup(dir);
    t.deepEqual(checkHostInputs(config(over), { ...tools(t), cwd: dir }), c.expected(dir));
  });
}

test("an Ubuntu image without gpgv on PATH and without Ubuntu's keyring: both named, each with its package", (t) => {
  const problems = checkHostInputs(DEFAULTS, {
    pathEnv: "/nonexistent",
    keyringPath: "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg.missing",
  });
  t.deepEqual(problems, [
    {
      key: "image",
      value: "ubuntu-23.04",
      problem: "`gpgv` is not on PATH: it checks the signature of Ubuntu's SHA256SUMS",
      fix: "apt-get install -y gpgv.",
    },
    {
      key: "image",
      value: "ubuntu-23.04",
      problem: "The signing keyring /usr/share/keyrings/ubuntu-cloudimage-keyring.gpg.missing is missing or unreadable",
      fix: "point keyringPath at an existing OpenPGP keyring.",
    },
  ]);
});

test("the real gpgv of this host is found on the real PATH", (t) => {
  const dir = scratch(t);
  writeFileSync(path.join(dir, "k.gpg"), "k");
  t.deepEqual(checkHostInputs(DEFAULTS, { keyringPath: path.join(dir, "k.gpg") }), []);
});

test("every problem of every input in ONE error, a pulumi.RunError (printed without a stack trace), one line each", (t) => {
  const dir = scratch(t);
  const bad = config({
    k3sAirgapDir: `${dir}/none`,
    ciliumChart: "./nope",
    image: "custom",
    imageUrl: `${dir}/disk.img`,
    imageSha256: "a".repeat(64),
  });
  const err = t.throws(() => assertHostInputs(bad, { cwd: dir, pathEnv: "/nonexistent" }), {
    instanceOf: HostInputsError,
  });
  t.true(pulumi.RunError.isInstance(err));
  const problems = checkHostInputs(bad, { cwd: dir, pathEnv: "/nonexistent" });
  t.deepEqual(err?.problems, problems);
  t.is(
    err?.message,
    "cilium-lab: 3 problems with files or tools on this host that the stack config names (checked before anything is created; nothing was):\n" +
      problems.map((p) => `- ${formatHostInputProblem(p)}`).join("\n"),
  );
  t.is(
    formatHostInputProblem(problems[2] as HostInputProblem),
    `cilium-lab:imageUrl "${dir}/disk.img": ${dir}/disk.img does not exist. Fix: Point cilium-lab:imageUrl at an existing qcow2 file (file:///path or /path) readable by this user, and set cilium-lab:imageSha256 to its \`sha256sum\`.`,
  );
  t.notThrows(() => assertHostInputs(DEFAULTS, tools(t)));
});
