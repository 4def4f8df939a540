/**
 * Entry of `npm run lab -- doctor [stack] [--json] [--no-probe]` (scripts/lab.sh runs it with tsx
 * before anything else, so it needs neither the pulumi CLI nor a passphrase). See scripts/doctor/.
 */
import { main } from "./doctor/index";
import { exitWith } from "./lib/cli";

exitWith(
  "doctor",
  main(process.argv.slice(2), (text) => process.stdout.write(`${text}\n`)),
);
