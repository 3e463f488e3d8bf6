// What the e2e suites set up on a fresh control plane: the Member CRD and
// Knative's CRDs (Established), the RBAC objects exactly as config/ renders
// them, and kubeconfigs with TokenRequest tokens for the two ServiceAccounts.
import { readdir } from "node:fs/promises";
import path from "node:path";
import { after, afterEach, before } from "node:test";
import { kustomize, nameOf, type KubeObject } from "../support/kube.ts";
import { knativeCrdDir, repoRoot, startControlPlane, waitFor, type ControlPlane, type RunResult } from "./control-plane.ts";

export const NAMESPACE = "default";
export const GREETER_SA = "member-greeter";
export const SOURCE_SA = "member-greeter-source";
export const MEMBER_CRD = "members.helloworld.apimeister.com";
export const MEMBERS = "members.helloworld.apimeister.com";

export const configDir = path.join(repoRoot, "config");
export const brokerDir = path.join(configDir, "overlays", "broker");
export const finalizerDir = path.join(configDir, "overlays", "farewell-finalizer");
export const metricsDir = path.join(configDir, "overlays", "metrics");

export interface Cluster {
  readonly cp: ControlPlane;
  /** `kubectl kustomize config`. */
  readonly rendered: readonly KubeObject[];
  /** The CRD names installed and Established. */
  readonly crds: readonly string[];
  /** kubeconfig with a token of ServiceAccount member-greeter (the function). */
  readonly greeterKubeconfig: string;
  /** kubeconfig with a token of ServiceAccount member-greeter-source (Knative's adapter). */
  readonly sourceKubeconfig: string;
  /**
   * With `dryRun`: `kubectl apply --dry-run=server -k` of config/ and of
   * config/overlays/broker, run once the CRDs are Established and before
   * anything of config/ is really applied.
   */
  readonly dryRuns: { readonly config: RunResult; readonly broker: RunResult; readonly finalizer: RunResult; readonly metrics: RunResult } | undefined;
  /** Milliseconds: control plane start, CRDs Established, RBAC and tokens. */
  readonly setupMs: { readonly controlPlane: number; readonly crds: number; readonly rbac: number };
}

const ms = (value: number): string => `${(value / 1000).toFixed(1)} s`;

const RBAC_KINDS = new Set(["ServiceAccount", "Role", "RoleBinding"]);

function list(objects: readonly KubeObject[]): string {
  return JSON.stringify({ apiVersion: "v1", kind: "List", items: objects });
}

/** Applies objects (as a v1 List on stdin) with the admin kubeconfig. */
export async function applyObjects(cp: ControlPlane, objects: readonly KubeObject[], extra: readonly string[] = []): Promise<string> {
  return cp.kubectlOk(["apply", ...extra, "-f", "-"], { input: list(objects) });
}

export async function installCrds(cp: ControlPlane, rendered: readonly KubeObject[]): Promise<string[]> {
  const member = rendered.filter((o) => o.kind === "CustomResourceDefinition");
  if (member.length !== 1 || nameOf(member[0] as KubeObject) !== MEMBER_CRD) {
    throw new Error(`config/ should render exactly the CRD ${MEMBER_CRD}, got ${member.map(nameOf).join(", ")}`);
  }
  await applyObjects(cp, member);
  const files = (await readdir(knativeCrdDir)).filter((f) => f.endsWith(".yaml")).sort();
  if (files.length === 0) throw new Error(`no Knative CRDs in ${knativeCrdDir}`);
  // Server-side apply: Knative Service's CRD is too large for the last-applied annotation.
  const applied = await cp.kubectlOk(["apply", "--server-side", ...files.flatMap((f) => ["-f", path.join(knativeCrdDir, f)])]);
  const names = [
    MEMBER_CRD,
    ...applied
      .split("\n")
      .filter((l) => l.startsWith("customresourcedefinition"))
      .map((l) => l.split(" ")[0]?.split("/")[1] ?? ""),
  ];
  await cp.kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", ...names.map((n) => `crd/${n}`)], { timeoutMs: 70_000 });
  return names;
}

/** The ServiceAccounts, Roles and RoleBindings of config/, applied as rendered (namespace default). */
export function rbacObjects(rendered: readonly KubeObject[]): KubeObject[] {
  return rendered.filter((o) => RBAC_KINDS.has(o.kind));
}

export interface ClusterOptions {
  readonly dryRun?: boolean;
  /** Extra kube-apiserver flags (a short --min-request-timeout, no watch cache, …). */
  readonly apiserverArgs?: readonly string[];
}

export async function setUpCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const rendered = await kustomize(configDir);
  const cp = await startControlPlane(options.apiserverArgs === undefined ? {} : { apiserverArgs: options.apiserverArgs });
  try {
    const crdStart = performance.now();
    const crds = await installCrds(cp, rendered);
    const crdMs = performance.now() - crdStart;
    const dryRuns =
      options.dryRun === true
        ? {
            config: await cp.kubectl(["apply", "--dry-run=server", "-k", configDir]),
            broker: await cp.kubectl(["apply", "--dry-run=server", "-k", brokerDir]),
            finalizer: await cp.kubectl(["apply", "--dry-run=server", "-k", finalizerDir]),
            metrics: await cp.kubectl(["apply", "--dry-run=server", "-k", metricsDir]),
          }
        : undefined;
    const rbacStart = performance.now();
    await applyObjects(cp, rbacObjects(rendered));
    const greeterKubeconfig = await cp.serviceAccountKubeconfig(GREETER_SA, NAMESPACE);
    const sourceKubeconfig = await cp.serviceAccountKubeconfig(SOURCE_SA, NAMESPACE);
    // A RoleBinding takes effect through the authorizer's informer: wait until it does.
    await waitFor(
      "the greeter's Role to take effect",
      async () => (await cp.kubectl(["auth", "can-i", "get", MEMBERS], { kubeconfig: greeterKubeconfig })).code === 0,
    );
    await waitFor(
      "the source's Role to take effect",
      async () => (await cp.kubectl(["auth", "can-i", "watch", MEMBERS], { kubeconfig: sourceKubeconfig })).code === 0,
    );
    const setupMs = { controlPlane: cp.timings.totalMs, crds: crdMs, rbac: performance.now() - rbacStart };
    process.stderr.write(
      `e2e: control plane up in ${ms(cp.timings.totalMs)} (etcd ${ms(cp.timings.etcdMs)}, kube-apiserver /readyz ${ms(cp.timings.apiserverMs)}), ` +
        `CRDs Established in ${ms(crdMs)}, RBAC and tokens in ${ms(setupMs.rbac)}\n`,
    );
    return {
      cp,
      rendered,
      crds,
      dryRuns,
      greeterKubeconfig,
      sourceKubeconfig,
      setupMs,
    };
  } catch (err) {
    await cp.stop();
    throw err;
  }
}

/**
 * A cluster for one test file: set up before its tests (then `ready`, e.g. to
 * start the function), and on the way out the processes' logs printed if any
 * test failed, and everything stopped, whatever happened.
 */
export function clusterForSuite(options: ClusterOptions = {}, ready?: (cluster: Cluster) => Promise<void>): () => Cluster {
  let cluster: Cluster | undefined;
  let failed = false;
  before(
    async () => {
      cluster = await setUpCluster(options);
      if (ready !== undefined) await ready(cluster);
    },
    { timeout: 180_000 },
  );
  afterEach((t) => {
    if ((t as unknown as { passed?: boolean }).passed === false) failed = true;
  });
  after(async () => {
    if (cluster === undefined) return;
    if (failed) process.stderr.write(`e2e: a test failed; process logs (GREETER_E2E_KEEP=1 keeps ${cluster.cp.dir}):\n${cluster.cp.diagnostics()}\n`);
    await cluster.cp.stop();
  });
  return () => {
    if (cluster === undefined) throw new Error("the control plane did not start");
    return cluster;
  };
}
