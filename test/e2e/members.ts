// Reading and writing Members and Events with kubectl (admin kubeconfig), for
// the e2e tests.
import { isMap, type JsonMap } from "../support/kube.ts";
import { waitFor, type ControlPlane } from "./control-plane.ts";
import { MEMBERS, NAMESPACE } from "./cluster.ts";

export type Obj = JsonMap;

export function memberManifest(name: string, memberOf?: unknown): string {
  return JSON.stringify({
    apiVersion: "helloworld.apimeister.com/v1",
    kind: "Member",
    metadata: { name, namespace: NAMESPACE },
    spec: memberOf === undefined ? {} : { memberOf },
  });
}

/** `kubectl apply -f -` of a Member; throws with kubectl's stderr when refused. */
export async function applyMember(cp: ControlPlane, name: string, memberOf?: unknown): Promise<void> {
  await cp.kubectlOk(["apply", "-f", "-"], { input: memberManifest(name, memberOf) });
}

export async function getMember(cp: ControlPlane, name: string): Promise<Obj | undefined> {
  const result = await cp.kubectl(["get", MEMBERS, name, "-n", NAMESPACE, "-o", "json", "--ignore-not-found", "--show-managed-fields"]);
  if (result.code !== 0) throw new Error(`kubectl get member ${name}: ${result.stderr}`);
  if (result.stdout.trim() === "") return undefined;
  const value: unknown = JSON.parse(result.stdout);
  if (!isMap(value)) throw new Error(`member ${name} is not an object`);
  return value;
}

export function field(object: Obj | undefined, ...keys: readonly string[]): unknown {
  let here: unknown = object;
  for (const key of keys) here = isMap(here) ? here[key] : undefined;
  return here;
}

export async function waitForStatusTeam(cp: ControlPlane, name: string, team: string): Promise<Obj> {
  return waitFor(
    `status.team of ${name} to be ${JSON.stringify(team)}`,
    async () => {
      const member = await getMember(cp, name);
      return field(member, "status", "team") === team ? member : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );
}

/** Core Events matching a field selector (e.g. involvedObject.uid=…,reason=Welcomed). */
export async function events(cp: ControlPlane, selector: string): Promise<Obj[]> {
  const list = await cp.kubectlJson(["get", "events", "-n", NAMESPACE, "--field-selector", selector]);
  const items = field(isMap(list) ? list : undefined, "items");
  return Array.isArray(items) ? items.filter(isMap) : [];
}

export async function waitForEvents(cp: ControlPlane, selector: string, count = 1): Promise<Obj[]> {
  return waitFor(
    `${count} Event(s) with ${selector}`,
    async () => {
      const found = await events(cp, selector);
      return found.length >= count ? found : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200 },
  );
}

export async function deleteMember(cp: ControlPlane, name: string): Promise<void> {
  await cp.kubectlOk(["delete", MEMBERS, name, "-n", NAMESPACE, "--wait=true"]);
}

export async function deleteAllMembers(cp: ControlPlane): Promise<void> {
  await cp.kubectlOk(["delete", MEMBERS, "--all", "-n", NAMESPACE, "--wait=true"]);
}
