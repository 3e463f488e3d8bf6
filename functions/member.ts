// The Member resource as the function sees it, read from untrusted event data.
// Everything here is pure: it turns JSON into typed values or throws a 400.
import { HttpError } from "./errors.ts";

export const MEMBER_GROUP = "helloworld.apimeister.com";
export const MEMBER_VERSION = "v1";
export const MEMBER_API_VERSION = `${MEMBER_GROUP}/${MEMBER_VERSION}`;
export const MEMBER_KIND = "Member";
export const MEMBER_PLURAL = "members";

/** Identifies one Member; what a Reference-mode event carries. */
export interface MemberRef {
  readonly name: string;
  readonly namespace: string;
}

/** The parts of a Member object the greeter acts on. */
export interface Member extends MemberRef {
  /** spec.memberOf, "" when absent or empty. */
  readonly team: string;
  /** status.team: the team last greeted into ("" for none), undefined when never greeted. */
  readonly recordedTeam: string | undefined;
  readonly uid: string | undefined;
  readonly resourceVersion: string | undefined;
  readonly generation: number | undefined;
  /** metadata.deletionTimestamp is set: a finalizer holds the object back. */
  readonly deleting: boolean;
  readonly finalizers: readonly string[];
  /** status.farewellAt is set: the farewell was said and recorded (finalizer mode). */
  readonly farewellRecorded: boolean;
  /** status.pendingEvent: the Kubernetes Event the last claim still owes. */
  readonly pendingEvent: { readonly name: string; readonly reason: string } | undefined;
  /** status.greeting and status.greetedAt: the last claim written. */
  readonly recordedGreeting: string | undefined;
  readonly recordedAt: string | undefined;
}

/**
 * The Member's path on the API server, also the subject of ApiServerSource
 * events (which take the version from the watched object's apiVersion).
 */
export function memberPath(ref: MemberRef, apiVersion: string = MEMBER_API_VERSION): string {
  return `/apis/${apiVersion}/namespaces/${ref.namespace}/${MEMBER_PLURAL}/${ref.name}`;
}

// Kubernetes object names (DNS-1123 subdomain) and namespaces (DNS-1123 label).
// Checking them keeps arbitrary input out of API paths and greetings.
const subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export type JsonObject = { readonly [key: string]: unknown };

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function invalid(message: string): HttpError {
  return new HttpError("ERR_INVALID_MEMBER", message);
}

function optionalString(obj: JsonObject, key: string, where: string): string | undefined {
  const value = obj[key];
  // null is how JSON says "unset"; Kubernetes treats it the same way.
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw invalid(`${where}.${key} must be a string, got ${jsonType(value)}`);
  return value;
}

function optionalObject(obj: JsonObject, key: string, where: string): JsonObject | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw invalid(`${where}.${key} must be an object, got ${jsonType(value)}`);
  return value;
}

export function jsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function checkName(name: string | undefined, where: string): string {
  if (name === undefined || name === "") throw invalid(`${where} is required`);
  if (name.length > 253 || !subdomain.test(name)) {
    throw invalid(`${where} is not a valid Kubernetes name (lowercase letters, digits, '-' and '.', at most 253)`);
  }
  return name;
}

function checkNamespace(namespace: string | undefined, fallback: string | undefined, where: string): string {
  const value = namespace ?? fallback;
  if (value === undefined || value === "") throw invalid(`${where} is required`);
  if (value.length > 63 || !label.test(value)) {
    throw invalid(`${where} is not a valid Kubernetes namespace (lowercase letters, digits and '-', at most 63)`);
  }
  return value;
}

/**
 * What kind of object the event data describes: "Member" of our group, or
 * something else the function ignores. `fallbackKind` is the event's `kind`
 * extension attribute, used when the data names no kind.
 */
export function isOurMember(data: JsonObject, fallbackKind: unknown): boolean {
  const kind = data["kind"] ?? fallbackKind;
  if (kind === undefined) throw invalid("data is not a Member object: kind is missing");
  if (typeof kind !== "string") throw invalid(`data.kind must be a string, got ${jsonType(kind)}`);
  if (kind !== MEMBER_KIND) return false;
  const apiVersion = optionalString(data, "apiVersion", "data");
  return apiVersion === undefined || apiVersion.startsWith(`${MEMBER_GROUP}/`);
}

/** A full Member object (Resource mode, or read back from the API server). */
export function parseMember(data: JsonObject, fallbackNamespace?: string): Member {
  const metadata = optionalObject(data, "metadata", "data");
  if (metadata === undefined) throw invalid("data.metadata is required");
  const spec = optionalObject(data, "spec", "data");
  const status = optionalObject(data, "status", "data");
  const generation = metadata["generation"];
  if (generation !== undefined && generation !== null && !Number.isSafeInteger(generation)) {
    throw invalid(`data.metadata.generation must be an integer, got ${jsonType(generation)}`);
  }
  const finalizers = metadata["finalizers"];
  if (finalizers !== undefined && finalizers !== null && !(Array.isArray(finalizers) && finalizers.every((f) => typeof f === "string"))) {
    throw invalid(`data.metadata.finalizers must be an array of strings, got ${jsonType(finalizers)}`);
  }
  return {
    name: checkName(optionalString(metadata, "name", "data.metadata"), "data.metadata.name"),
    namespace: checkNamespace(optionalString(metadata, "namespace", "data.metadata"), fallbackNamespace, "data.metadata.namespace"),
    team: (spec && optionalString(spec, "memberOf", "data.spec")) ?? "",
    recordedTeam: status && optionalString(status, "team", "data.status"),
    uid: optionalString(metadata, "uid", "data.metadata"),
    resourceVersion: optionalString(metadata, "resourceVersion", "data.metadata"),
    generation: typeof generation === "number" ? generation : undefined,
    deleting: optionalString(metadata, "deletionTimestamp", "data.metadata") !== undefined,
    finalizers: Array.isArray(finalizers) ? (finalizers as string[]) : [],
    farewellRecorded: status !== undefined && optionalString(status, "farewellAt", "data.status") !== undefined,
    pendingEvent: pendingEventOf(status),
    recordedGreeting: status && optionalString(status, "greeting", "data.status"),
    recordedAt: status && optionalString(status, "greetedAt", "data.status"),
  };
}

function pendingEventOf(status: JsonObject | undefined): Member["pendingEvent"] {
  const pending = status && optionalObject(status, "pendingEvent", "data.status");
  if (pending === undefined) return undefined;
  const name = optionalString(pending, "name", "data.status.pendingEvent");
  const reason = optionalString(pending, "reason", "data.status.pendingEvent");
  if (name === undefined || reason === undefined) throw invalid("data.status.pendingEvent needs a name and a reason");
  return { name, reason };
}

/** A Reference-mode object reference: {kind, namespace, name, apiVersion}. */
export function parseMemberRef(data: JsonObject, fallbackNamespace?: string): MemberRef {
  return {
    name: checkName(optionalString(data, "name", "data"), "data.name"),
    namespace: checkNamespace(optionalString(data, "namespace", "data"), fallbackNamespace, "data.namespace"),
  };
}
