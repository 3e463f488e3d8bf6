// Schema validation for rendered manifests, offline:
//
// - Custom resources (Knative's and our Member) against the openAPIV3Schema of
//   their CustomResourceDefinition, with ajv. The API server prunes fields a
//   structural schema does not declare, silently; here an undeclared field is
//   an error instead (what `kubectl apply --validate=strict` reports), so a
//   typo such as `readOnlyRootFileSystem` cannot pass as "valid".
// - Built-in kinds against Kubernetes' own OpenAPI: the validators that the
//   kubernetes-models package generates from it (types, required fields,
//   enums, formats), plus an unknown-field check that walks the field lists of
//   @kubernetes/client-node's generated models (same OpenAPI, release 1.36).
import * as k8s from "@kubernetes/client-node";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { default as addFormatsModule } from "ajv-formats";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { dig, groupOf, isMap, readObjects, type Json, type JsonMap, type KubeObject } from "./kube.ts";

// ajv-formats is CommonJS; depending on how Node's loader exposes it, the function is the default export or its `default`.
type AddFormats = (ajv: Ajv) => Ajv;
const addFormats: AddFormats = typeof addFormatsModule === "function" ? addFormatsModule : (addFormatsModule as unknown as { default: AddFormats }).default;

/** A checker: the problems it finds, [] for none. */
export type Validate = (object: unknown) => string[];

// ---------------------------------------------------------------------------
// CRD openAPIV3Schema → JSON Schema with Kubernetes' semantics

/**
 * Rewrites one node of a structural schema for ajv:
 * - an object without `x-kubernetes-preserve-unknown-fields` and without
 *   `additionalProperties` accepts only its declared `properties` (the rest
 *   would be pruned);
 * - `x-kubernetes-int-or-string` without a type means integer or string;
 * - `x-kubernetes-embedded-resource` objects also have apiVersion, kind, metadata.
 * Other x-kubernetes-* keywords (list types, CEL validations) are left for
 * ajv to ignore (strict: false): they cannot be checked offline.
 */
function toJsonSchema(node: Json, root: boolean): Json {
  if (!isMap(node)) return node;
  const out: JsonMap = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case "properties":
      case "patternProperties":
      case "definitions":
        out[key] = isMap(value) ? Object.fromEntries(Object.entries(value).map(([name, child]) => [name, toJsonSchema(child, false)])) : value;
        break;
      case "items":
      case "additionalProperties":
      case "not":
        out[key] = Array.isArray(value) ? value.map((child) => toJsonSchema(child, false)) : toJsonSchema(value, false);
        break;
      case "allOf":
      case "anyOf":
      case "oneOf":
        out[key] = Array.isArray(value) ? value.map((child) => toJsonSchema(child, false)) : value;
        break;
      default:
        out[key] = value;
    }
  }
  if (node["x-kubernetes-int-or-string"] === true && node["type"] === undefined && node["anyOf"] === undefined) {
    out["anyOf"] = [{ type: "integer" }, { type: "string" }];
  }
  const preserve = node["x-kubernetes-preserve-unknown-fields"] === true;
  const embedded = node["x-kubernetes-embedded-resource"] === true;
  if (root || embedded) {
    // The API server validates apiVersion, kind and ObjectMeta itself; metadata
    // is checked separately against ObjectMeta (see validateObjectMeta).
    const properties = isMap(out["properties"]) ? { ...out["properties"] } : {};
    properties["apiVersion"] = { type: "string" };
    properties["kind"] = { type: "string" };
    properties["metadata"] = { type: "object" };
    out["properties"] = properties;
  }
  if (node["type"] === "object" && !preserve && out["additionalProperties"] === undefined) {
    out["additionalProperties"] = false;
  }
  return out;
}

function newAjv(): Ajv {
  // strict: false lets the x-kubernetes-* keywords through; `nullable` is
  // understood by ajv itself; formats as OpenAPI names them (int32, int64,
  // date-time, byte, …) come from ajv-formats.
  const ajv = new Ajv({ strict: false, allErrors: true, logger: false });
  addFormats(ajv);
  return ajv;
}

function describeErrors(errors: readonly ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const extra = e.keyword === "additionalProperties" ? `: ${String((e.params as { additionalProperty?: unknown }).additionalProperty)}` : "";
    return `${e.instancePath === "" ? "(root)" : e.instancePath} ${e.message ?? e.keyword}${extra}`;
  });
}

export interface CrdVersionSchema {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly validate: Validate;
}

/** Compiles every version of a CustomResourceDefinition into a validator for its objects. */
export function compileCrd(crd: KubeObject): CrdVersionSchema[] {
  const group = dig(crd, "spec", "group");
  const kind = dig(crd, "spec", "names", "kind");
  const plural = dig(crd, "spec", "names", "plural");
  const versions = dig(crd, "spec", "versions");
  if (typeof group !== "string" || typeof kind !== "string" || typeof plural !== "string" || !Array.isArray(versions)) {
    throw new Error(`${String(dig(crd, "metadata", "name"))}: not a CustomResourceDefinition with group, names and versions`);
  }
  const ajv = newAjv();
  return versions.map((entry) => {
    const version = dig(entry, "name");
    const schema = dig(entry, "schema", "openAPIV3Schema");
    if (typeof version !== "string" || !isMap(schema)) throw new Error(`${group}/${kind}: a version without name or openAPIV3Schema`);
    const compiled: ValidateFunction = ajv.compile(toJsonSchema(schema, true) as object);
    const apiVersion = `${group}/${version}`;
    const validate: Validate = (object) => {
      const problems: string[] = [];
      if (dig(object, "apiVersion") !== apiVersion) problems.push(`apiVersion must be ${apiVersion}`);
      if (dig(object, "kind") !== kind) problems.push(`kind must be ${kind}`);
      if (!compiled(object)) problems.push(...describeErrors(compiled.errors));
      problems.push(...validateObjectMeta(dig(object, "metadata")));
      return problems;
    };
    return { group, version, kind, plural, validate };
  });
}

/** A validator for every kind the CRDs in a folder define, keyed by "apiVersion kind". */
export async function loadCrdFolder(dir: string): Promise<Map<string, CrdVersionSchema>> {
  const byKey = new Map<string, CrdVersionSchema>();
  const files = (await readdir(dir)).filter((f) => f.endsWith(".yaml")).sort();
  for (const file of files) {
    for (const object of await readObjects(path.join(dir, file))) {
      if (object.kind !== "CustomResourceDefinition") continue;
      for (const schema of compileCrd(object)) byKey.set(`${schema.group}/${schema.version} ${schema.kind}`, schema);
    }
  }
  return byKey;
}

// ---------------------------------------------------------------------------
// Built-in kinds

interface Attribute {
  readonly baseName: string;
  readonly type: string;
}

interface ModelClass {
  getAttributeTypeMap(): readonly Attribute[];
}

function isModelClass(value: unknown): value is ModelClass {
  return typeof value === "function" && typeof (value as { getAttributeTypeMap?: unknown }).getAttributeTypeMap === "function";
}

const models = k8s as unknown as Readonly<Record<string, unknown>>;

function modelClass(name: string): ModelClass | undefined {
  const candidate = models[name];
  return isModelClass(candidate) ? candidate : undefined;
}

/** The name of client-node's class for a built-in kind: V1Role, V1CustomResourceDefinition, CoreV1Event, … */
function modelClassName(apiVersion: string, kind: string): string | undefined {
  const version = apiVersion.slice(apiVersion.lastIndexOf("/") + 1);
  const prefix = version.charAt(0).toUpperCase() + version.slice(1);
  return [`${prefix}${kind}`, `Core${prefix}${kind}`].find((name) => modelClass(name) !== undefined);
}

/** Fields that the models type as `any` but that hold nested JSON schemas. */
const schemaValued = new Set(["items", "additionalProperties", "additionalItems"]);

/** Every field of `value` that the model `type` does not declare, as JSON paths. */
function unknownFields(value: unknown, type: string, at: string): string[] {
  if (value === null || value === undefined) return [];
  const array = /^Array<(.+)>$/.exec(type);
  if (array?.[1] !== undefined) {
    const item = array[1];
    return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, item, `${at}/${i}`)) : [];
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map?.[1] !== undefined) {
    const item = map[1];
    return isMap(value) ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, item, `${at}/${k}`)) : [];
  }
  const cls = modelClass(type);
  if (cls === undefined || !isMap(value)) return [];
  const attributes = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  const problems: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    const childType = attributes.get(key);
    if (childType === undefined) {
      problems.push(`${at === "" ? "(root)" : at} has unknown field ${JSON.stringify(key)}`);
    } else if (type === "V1JSONSchemaProps" && schemaValued.has(key) && isMap(child)) {
      problems.push(...unknownFields(child, "V1JSONSchemaProps", `${at}/${key}`));
    } else {
      problems.push(...unknownFields(child, childType, `${at}/${key}`));
    }
  }
  return problems;
}

function validationMessages(err: unknown): string[] {
  if (!(err instanceof Error)) return [String(err)];
  return err.message.split(", data").map((m, i) => (i === 0 ? m : `data${m}`));
}

interface ValidatingModel {
  validate(): void;
}

type ModelCtor = new (data: unknown) => ValidatingModel;

/** ObjectMeta of any object (custom resources included): types, and no unknown fields. */
function validateObjectMeta(metadata: unknown): string[] {
  if (metadata === undefined) return ["metadata is required"];
  if (!isMap(metadata)) return ["metadata must be an object"];
  return unknownFields(metadata, "V1ObjectMeta", "/metadata");
}

/**
 * Validates a built-in object against Kubernetes' schema; async because the
 * kind's validator is loaded on demand. A kind Kubernetes does not have is an
 * error.
 */
export async function validateBuiltin(object: unknown): Promise<string[]> {
  const apiVersion = dig(object, "apiVersion");
  const kind = dig(object, "kind");
  if (typeof apiVersion !== "string" || typeof kind !== "string") return ["apiVersion and kind must be strings"];
  let ctor: ModelCtor;
  try {
    // kubernetes-models lays out one module per kind: v1/ServiceAccount, rbac.authorization.k8s.io/v1/Role, …
    const module = (await import(`kubernetes-models/${apiVersion}/${kind}`)) as Readonly<Record<string, unknown>>;
    const found = module[kind];
    if (typeof found !== "function") throw new Error("no model class");
    ctor = found as ModelCtor;
  } catch {
    return [`${apiVersion} ${kind} is not a built-in Kubernetes kind`];
  }
  const className = modelClassName(apiVersion, kind);
  if (className === undefined) return [`no field list for ${apiVersion} ${kind}`];
  const problems: string[] = [];
  try {
    new ctor(object).validate();
  } catch (err) {
    problems.push(...validationMessages(err));
  }
  // apiVersion/kind are checked by the kubernetes-models validator (enums).
  problems.push(...unknownFields(object, className, ""));
  return problems;
}

/** Whether an apiVersion belongs to Kubernetes itself (core or a *.k8s.io or unqualified group). */
export function isBuiltinGroup(apiVersion: string): boolean {
  const group = groupOf(apiVersion);
  return group === "" || group.endsWith(".k8s.io") || !group.includes(".");
}

/**
 * The rules that make a CRD schema structural (Kubernetes rejects the CRD
 * otherwise), in the part that matters here: every node states its type,
 * unless it is int-or-string or keeps unknown fields; an object has
 * `properties` or `additionalProperties`, not both.
 */
export function checkStructural(schema: unknown, at = ""): string[] {
  if (!isMap(schema)) return [`${at || "(root)"}: not a schema object`];
  const problems: string[] = [];
  const free = schema["x-kubernetes-int-or-string"] === true || schema["x-kubernetes-preserve-unknown-fields"] === true;
  if (schema["type"] === undefined && !free) problems.push(`${at || "(root)"}: has no type`);
  if (schema["properties"] !== undefined && schema["additionalProperties"] !== undefined) {
    problems.push(`${at || "(root)"}: has both properties and additionalProperties`);
  }
  const properties = schema["properties"];
  if (isMap(properties)) {
    for (const [name, child] of Object.entries(properties)) problems.push(...checkStructural(child, `${at}.${name}`));
  }
  for (const key of ["items", "additionalProperties"]) {
    const child = schema[key];
    if (isMap(child)) problems.push(...checkStructural(child, `${at}[${key}]`));
  }
  return problems;
}
