/**
 * The entry of a TypeScript CLI under scripts/: its `main` resolves to the exit code; an unexpected
 * error is printed with its stack as `<name>: unexpected error: …` and exits 1.
 */
export function exitWith(name: string, run: Promise<number>): void {
  run.then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(
        `${name}: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
