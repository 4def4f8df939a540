/**
 * Runs `compare`'s main() in a child process on a given project directory and environment, so a
 * test can send it real signals: `node --import=tsx test/compare/cli-child.ts '<json>'` with
 * `{ "argv": [...], "projectDir": "...", "env": {...} }`. Exits with main()'s code.
 */
import { main } from "../../scripts/compare/index";

const { argv, projectDir, env } = JSON.parse(process.argv[2] ?? "{}") as {
  argv: string[];
  projectDir: string;
  env: Record<string, string>;
};
main(argv, undefined, { projectDir, env: { ...process.env, ...env } }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
