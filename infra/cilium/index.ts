/**
 * The Cilium layer: the article's Helm release, with values chosen by stack config, and the
 * readiness gate that waits until its agents, operator and Hubble are ready.
 */
export { Cilium, type CiliumArgs, type CiliumConfig } from "./cilium";
export { CiliumReady } from "./ready";
export { readyTimeoutSeconds } from "./ready-check";
export { RELEASE_NAME, RELEASE_NAMESPACE } from "./release";
