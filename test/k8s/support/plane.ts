/**
 * One test control plane per test file (test/support/control-plane.ts): started before the file's
 * tests, stopped after them. Its own module because it registers ava hooks, and the control plane
 * itself is also started outside ava (test/k8s/fixtures/hold-control-plane.ts).
 */
import test from "ava";

import { type ControlPlane, type ControlPlaneOptions, startControlPlane } from "../../support/control-plane";

/** Registers the hooks; the returned function gives the running control plane (or says it did not start). */
export function controlPlaneForFile(options: ControlPlaneOptions = {}): () => ControlPlane {
  let cp: ControlPlane | undefined;
  test.before(async () => {
    cp = await startControlPlane(options);
  });
  test.after.always(async () => {
    await cp?.stop();
  });
  return () => {
    if (cp === undefined) {
      throw new Error("the control plane did not start (see test.before)");
    }
    return cp;
  };
}

/** Creates namespace `name` (optionally with more of the object, e.g. labels); returns the API's status. */
export async function createNamespace(
  cp: ControlPlane,
  name: string,
  more: Record<string, unknown> = {},
): Promise<number> {
  const res = await cp.request("POST", "/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name },
    ...more,
  });
  return res.status;
}
