// Types of scripts/run-tests-lib.mjs (for test/tiers.test.ts).
export declare const TIERED: RegExp;
export declare const USER_TIER: RegExp;
export declare function runsAs(text: string): "root" | "user" | undefined;
export declare function splitByUser(
  files: readonly string[],
  read: (file: string) => string,
): { user: string[]; root: string[] };
export declare function needsK8sToolchain(text: string): boolean;
export declare function splitLate(
  files: readonly string[],
  read: (file: string) => string,
): { early: string[]; late: string[] };
export declare function parseEnv0(text: string): Record<string, string>;
export declare function splitArgs(
  argv: readonly string[],
  exists: (path: string) => boolean,
): { paths: string[]; options: string[] };
export declare function testFiles(roots: readonly string[], keep?: (file: string) => boolean): string[];
export declare function userEnv(
  env: Readonly<Record<string, string | undefined>>,
  who: { user: string; home: string; tmpdir: string },
): Record<string, string>;
export interface Tally {
  pass: number;
  fail: number;
  skip: number;
  todo: number;
  sawPlan: boolean;
}
export declare function newTally(): Tally;
export declare function countTap(tally: Tally, line: string): void;
export declare function mergedSummary(
  runs: readonly { tally: Tally; code: number | null; signal?: NodeJS.Signals | null }[],
): { line: string; exitCode: 0 | 1 };
export declare function avaPrefix(file: string): string;
export declare function tapFile(line: string, files: readonly string[]): string | undefined;
export declare function fileSeconds(
  events: readonly { file: string; at: number }[],
  start: number,
): { file: string; seconds: number }[];
