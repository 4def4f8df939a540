/**
 * Entry of `npm run lab -- doctor [stack] [--json] [--no-probe]` (scripts/lab.sh runs it with tsx
 * before anything else, so it needs neither the pulumi CLI nor a passphrase). See scripts/doctor/.
 */
import { main } from "./doctor/index";

main(process.argv.slice(2), (text) => process.stdout.write(`${text}\n`)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `doctor: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
