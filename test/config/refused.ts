/** The parser's refusal of a config, for the tables of refused configs. */
import { LabConfigError, parseLabConfig } from "../../infra/config";

/** The problems of a config that must be refused (fails the test when it parses). */
export function problemsOf(raw: Record<string, string>): readonly string[] {
  try {
    parseLabConfig(raw);
  } catch (err) {
    if (err instanceof LabConfigError) {
      return err.problems;
    }
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
}
