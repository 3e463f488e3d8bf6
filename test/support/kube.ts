// Rendering the kustomizations in config/ and reading the YAML they produce,
// for the manifest tests. kubectl (with its built-in kustomize) must be on PATH.
import { execFile } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";

const run = promisify(execFile);

export const repoRoot = path.resolve(import.meta.dirname, "..", "..");
export const configDir = path.join(repoRoot, "config");
/** Knative's own CRDs, copied unchanged into the repository (see its README). */
export const knativeCrdDir = path.join(repoRoot, "test", "fixtures", "knative-crds");

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonMap = { [key: string]: Json };

export interface KubeObject extends JsonMap {
  apiVersion: string;
  kind: string;
  metadata: JsonMap;
}

export function isMap(value: unknown): value is JsonMap {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isKubeObject(value: unknown): value is KubeObject {
  return isMap(value) && typeof value["apiVersion"] === "string" && typeof value["kind"] === "string" && isMap(value["metadata"]);
}

/** Follows a path of keys and indexes; undefined where it leads nowhere. */
export function dig(value: unknown, ...keys: readonly (string | number)[]): unknown {
  let here = value;
  for (const key of keys) {
    if (typeof key === "number") {
      if (!Array.isArray(here)) return undefined;
      here = here[key];
    } else {
      if (!isMap(here)) return undefined;
      here = here[key];
    }
  }
  return here;
}

export function nameOf(object: KubeObject): string {
  const name = object.metadata["name"];
  return typeof name === "string" ? name : "";
}

export function namespaceOf(object: KubeObject): string | undefined {
  const namespace = object.metadata["namespace"];
  return typeof namespace === "string" ? namespace : undefined;
}

/** "rbac.authorization.k8s.io/v1" → group "rbac.authorization.k8s.io"; "v1" → "". */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.lastIndexOf("/");
  return slash === -1 ? "" : apiVersion.slice(0, slash);
}

export function describe(object: KubeObject): string {
  const namespace = namespaceOf(object);
  return `${object.apiVersion} ${object.kind} ${namespace === undefined ? "" : `${namespace}/`}${nameOf(object)}`;
}

/** Parses a multi-document YAML stream into Kubernetes objects; anything else is an error. */
function parseObjects(text: string, where: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const document of parseAllDocuments(text)) {
    if (!("errors" in document) || document.errors.length > 0) {
      const errors = "errors" in document ? document.errors.map((e) => e.message).join("; ") : "empty document";
      throw new Error(`${where}: YAML error: ${errors}`);
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    if (!isKubeObject(value)) throw new Error(`${where}: a document is not a Kubernetes object (apiVersion, kind, metadata)`);
    objects.push(value);
  }
  return objects;
}

export async function readObjects(file: string): Promise<KubeObject[]> {
  return parseObjects(await readFile(file, "utf8"), path.relative(repoRoot, file));
}

/** Every Kubernetes object in the YAML files of a folder (not recursive). */
export async function readFolder(dir: string): Promise<KubeObject[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".yaml") || f.endsWith(".yml")).sort();
  const objects: KubeObject[] = [];
  for (const file of files) objects.push(...(await readObjects(path.join(dir, file))));
  return objects;
}

/** `kubectl kustomize DIR`, parsed. */
export async function kustomize(dir: string): Promise<KubeObject[]> {
  let stdout: string;
  try {
    ({ stdout } = await run("kubectl", ["kustomize", dir], { maxBuffer: 16 * 1024 * 1024, timeout: 60_000 }));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error("kubectl is not on PATH: the manifest tests render config/ with `kubectl kustomize`", { cause: err });
    }
    const stderr = (err as { stderr?: unknown }).stderr;
    throw new Error(`kubectl kustomize ${path.relative(repoRoot, dir)} failed: ${typeof stderr === "string" ? stderr.trim() : String(err)}`, { cause: err });
  }
  return parseObjects(stdout, `kubectl kustomize ${path.relative(repoRoot, dir)}`);
}

/** A deep copy to tamper with. */
export function clone<T>(value: T): T {
  return structuredClone(value);
}

export function find(objects: readonly KubeObject[], kind: string, name: string, group?: string): KubeObject {
  const found = objects.filter((o) => o.kind === kind && nameOf(o) === name && (group === undefined || groupOf(o.apiVersion) === group));
  const [only] = found;
  if (only === undefined || found.length !== 1) {
    throw new Error(`expected exactly one ${kind} ${name}${group === undefined ? "" : ` (${group})`}, found ${found.length}`);
  }
  return only;
}

/** The value the first container of a workload (a Knative Service's template) sets for `name`; undefined when it sets none. */
export function containerEnvValue(workload: KubeObject, name: string): unknown {
  const env = dig(workload, "spec", "template", "spec", "containers", 0, "env");
  const entry = Array.isArray(env) ? env.find((e) => dig(e, "name") === name) : undefined;
  return dig(entry, "value");
}
