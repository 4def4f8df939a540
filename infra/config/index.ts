/**
 * The only module that reads Pulumi stack config. Everything else receives typed values through
 * component `Args`.
 */
import * as pulumi from "@pulumi/pulumi";

import { PROJECT } from "./keys";
import { parseLabConfig, type LabConfig } from "./parse";

export { KEYS, KEY_NAMES, NODE_HOST_OFFSET, PROJECT, describeKey, type KeyName, type KeySpec } from "./keys";
export { SERVICE_CIDR } from "./rules";
export {
  LabConfigError,
  parseLabConfig,
  type Accelerator,
  type ImageName,
  type LabConfig,
  type NetworkMode,
  type ParsedConfig,
  type RoutingMode,
} from "./parse";

/**
 * Reads every `cilium-lab:*` key of the current stack, parses it once and warns about soft
 * problems. Throws before any resource is registered when the config is wrong.
 */
export function loadLabConfig(): LabConfig {
  const prefix = `${PROJECT}:`;
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (key.startsWith(prefix)) {
      raw[key.slice(prefix.length)] = value;
    }
  }
  const { config, warnings } = parseLabConfig(raw);
  for (const warning of warnings) {
    void pulumi.log.warn(warning);
  }
  return config;
}
