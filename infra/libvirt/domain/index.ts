/**
 * `Domain`, one lab VM: its inputs (types.ts), the input check (check.ts), the pure boot errors
 * (boot-errors.ts), the readiness wait (readiness.ts), the console log (console.ts), the overlay reset (overlay.ts) and the
 * provider with its resource class (provider.ts).
 */
export type { DomainArgs, DomainInputs, DomainOutputs } from "./types";
export {
  CONSOLE_TAIL_LINES,
  SSH_REFUSAL_GRACE_MS,
  bootFix,
  bootTimeoutMessage,
  bridgeOf,
  classifyReadyAttempt,
  classifySsh,
  dadConflictMessage,
  findDadConflict,
  formatLeases,
  startFix,
  type BootStage,
  type DadConflict,
  type NotReady,
} from "./boot-errors";
export { READY_COMMAND, hostKeyAlgorithms, normalizePublicKey, pinnedHostKeyOptions } from "./readiness";
export { cleanConsole, consoleTail, readConsole, removeConsole, type ConsoleLocation } from "./console";
export { resetOverlay } from "./overlay";
export { DOMAIN_REPLACE_KEYS, DOMAIN_UPDATE_KEYS, Domain, UNDEFINE_FLAGS, domainProvider } from "./provider";
