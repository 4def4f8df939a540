/**
 * The one loader of the scripts that run on the lab nodes (scripts/node/). Every script goes out
 * with scripts/node/lib.sh in front of it (the shared `log`, `fail`, `json_str`, …), whether the
 * k3s and verification layers send it on SSH stdin (`bash -s`) or copy it to the node as a file.
 * The text is lib.sh, then the script, byte for byte; its SHA-256 therefore covers both, and it is
 * what the steps' triggers and command lines carry: an edit of either file re-runs the steps that
 * use the script. The tests run and shellcheck this same text.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

import { cacheRoot } from "./libvirt/base-image/cache";

/** The repository's scripts/node/ directory. */
export const NODE_SCRIPTS_DIR = resolve(__dirname, "../scripts/node");

/** The shared helpers, put in front of every script. */
export const NODE_LIB = "lib.sh";

/** A script of scripts/node/ as the nodes get it. */
export interface NodeScript {
  /** The script's file name in scripts/node/, e.g. `install-k3s.sh`. */
  readonly name: string;
  /** lib.sh, then the script: what the node runs. */
  readonly text: string;
  /** Hex SHA-256 of `text`. */
  readonly sha256: string;
  /**
   * A host file holding exactly `text`, for the steps that copy the script to the node: written on
   * first use under the lab's cache (`$CILIUM_LAB_CACHE`, else `$XDG_CACHE_HOME/cilium-lab`, else
   * `~/.cache/cilium-lab`) as `node-scripts/<first 16 hex digits of sha256>/<name>`, so the path
   * stays the same while the text does.
   */
  readonly path: string;
}

/** Reads `scripts/node/<name>` and puts lib.sh in front of it. */
export function nodeScript(name: string): NodeScript {
  const read = (file: string): string => readFileSync(join(NODE_SCRIPTS_DIR, file), "utf8");
  const text = read(NODE_LIB) + read(name);
  const sha256 = createHash("sha256").update(text).digest("hex");
  let path: string | undefined;
  return {
    name,
    text,
    sha256,
    get path(): string {
      path ??= writeShipped(name, text, sha256);
      return path;
    },
  };
}

/** Writes `text` to its content-addressed file (atomically, once) and returns the path. */
function writeShipped(name: string, text: string, sha256: string): string {
  // The lab's cache on the host, the image cache's root (shared with scripts/dev/build-test-image.sh).
  const dir = join(cacheRoot(process.env, homedir()), "node-scripts", sha256.slice(0, 16));
  const file = join(dir, name);
  if (existsSync(file) && readFileSync(file, "utf8") === text) {
    return file;
  }
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, file);
  } catch (err) {
    throw new Error(
      `cannot write ${file}, the copy of scripts/node/${name} (with lib.sh) that the k3s layer sends to the nodes: ${
        err instanceof Error ? err.message : String(err)
      }. Fix: make ${dir} writable, or point CILIUM_LAB_CACHE at a writable directory.`,
      { cause: err },
    );
  }
  return file;
}
