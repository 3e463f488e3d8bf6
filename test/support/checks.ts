// The project's own rules for its manifests, as pure checkers: each returns
// the problems it finds ([] for none), so a test can show both that the real
// manifests pass and that a tampered copy is caught.
import { dig, isMap, nameOf, namespaceOf, type Json, type KubeObject } from "./kube.ts";

// ---------------------------------------------------------------------------
// RBAC: exactly the least privilege, nothing more

/** One permission: "group resource verb", group "" for core. */
export type Grant = string;

export function grant(group: string, resource: string, verb: string): Grant {
  return `${group === "" ? '""' : group} ${resource} ${verb}`;
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === "string") ? (value as string[]) : undefined;
}

/**
 * Compares a Role's rules with the exact set of grants it should have. Also
 * refuses what would widen or blur the rules even where the set matches:
 * wildcards, nonResourceURLs, resourceNames, fields other than the three.
 */
export function checkRole(role: KubeObject, expected: readonly Grant[]): string[] {
  const problems: string[] = [];
  if (role.kind !== "Role") problems.push(`${role.kind} ${nameOf(role)}: must be a namespaced Role, not ${role.kind}`);
  const rules = role["rules"];
  if (!Array.isArray(rules)) return [...problems, `${nameOf(role)}: rules must be a list`];
  const granted = new Set<Grant>();
  rules.forEach((rule, i) => {
    const where = `${nameOf(role)} rules[${i}]`;
    if (!isMap(rule)) {
      problems.push(`${where}: not an object`);
      return;
    }
    const extra = Object.keys(rule).filter((k) => k !== "apiGroups" && k !== "resources" && k !== "verbs");
    if (extra.length > 0) problems.push(`${where}: unexpected ${extra.join(", ")}`);
    const groups = stringList(rule["apiGroups"]);
    const resources = stringList(rule["resources"]);
    const verbs = stringList(rule["verbs"]);
    if (groups === undefined || resources === undefined || verbs === undefined) {
      problems.push(`${where}: apiGroups, resources and verbs must be lists of strings`);
      return;
    }
    for (const value of [...groups, ...resources, ...verbs]) {
      if (value.includes("*")) problems.push(`${where}: wildcard ${JSON.stringify(value)}`);
    }
    for (const group of groups) for (const resource of resources) for (const verb of verbs) granted.add(grant(group, resource, verb));
  });
  const want = new Set(expected);
  for (const g of granted) if (!want.has(g)) problems.push(`${nameOf(role)}: grants more than needed: ${g}`);
  for (const g of want) if (!granted.has(g)) problems.push(`${nameOf(role)}: lacks ${g}`);
  return problems;
}

/** A RoleBinding that binds exactly one ServiceAccount of its namespace to the Role of the same name. */
export function checkBinding(binding: KubeObject, role: string, serviceAccount: string): string[] {
  const problems: string[] = [];
  const ref = binding["roleRef"];
  if (dig(ref, "apiGroup") !== "rbac.authorization.k8s.io" || dig(ref, "kind") !== "Role" || dig(ref, "name") !== role) {
    problems.push(`${nameOf(binding)}: roleRef must be the Role ${role}`);
  }
  const subjects = binding["subjects"];
  if (!Array.isArray(subjects) || subjects.length !== 1) {
    problems.push(`${nameOf(binding)}: must bind exactly one subject`);
  } else {
    const [subject] = subjects;
    if (dig(subject, "kind") !== "ServiceAccount" || dig(subject, "name") !== serviceAccount) {
      problems.push(`${nameOf(binding)}: subject must be the ServiceAccount ${serviceAccount}`);
    }
    if (dig(subject, "namespace") !== namespaceOf(binding)) {
      problems.push(`${nameOf(binding)}: the ServiceAccount must be in the binding's namespace ${String(namespaceOf(binding))}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Knative Services

const MIN_SCALE_KEYS = ["autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/minScale"];

/** Parses a Kubernetes quantity ("50m", "1", "64Mi", "1.5Gi") into a number of base units. */
export function quantity(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value !== "string") return undefined;
  const match = /^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([a-zA-Z]*)$/.exec(value);
  if (match?.[1] === undefined) return undefined;
  const factors: Readonly<Record<string, number>> = {
    "": 1,
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
  };
  const factor = factors[match[2] ?? ""];
  return factor === undefined ? undefined : Number(match[1]) * factor;
}

/** An image reference pinned to a tag other than latest, or to a digest. */
export function isPinnedImage(image: unknown): boolean {
  if (typeof image !== "string" || image === "") return false;
  if (/@sha256:[0-9a-f]{64}$/.test(image)) return true;
  const lastSlash = image.lastIndexOf("/");
  const colon = image.indexOf(":", lastSlash + 1);
  if (colon === -1) return false;
  const tag = image.slice(colon + 1);
  return tag !== "" && tag !== "latest";
}

/**
 * What every Knative Service of the project must be: cluster-local, able to
 * scale to zero, one container with a pinned image, requests and limits,
 * and a hardened securityContext.
 */
export function checkKnativeService(service: KubeObject): string[] {
  const problems: string[] = [];
  const name = nameOf(service);
  if (dig(service, "metadata", "labels", "networking.knative.dev/visibility") !== "cluster-local") {
    problems.push(`${name}: needs the label networking.knative.dev/visibility: cluster-local`);
  }
  for (const annotations of [dig(service, "metadata", "annotations"), dig(service, "spec", "template", "metadata", "annotations")]) {
    for (const key of MIN_SCALE_KEYS) {
      const value = dig(annotations, key);
      if (value !== undefined && value !== "0") problems.push(`${name}: ${key} is ${JSON.stringify(value)}, it must be absent or "0" (scale to zero)`);
    }
  }
  const containers = dig(service, "spec", "template", "spec", "containers");
  if (!Array.isArray(containers) || containers.length !== 1) return [...problems, `${name}: must have exactly one container`];
  const container = containers[0];
  if (!isPinnedImage(dig(container, "image")))
    problems.push(`${name}: image ${JSON.stringify(dig(container, "image"))} must be pinned by tag (not latest) or digest`);
  const resources = dig(container, "resources");
  for (const resource of ["cpu", "memory"]) {
    const request = quantity(dig(resources, "requests", resource));
    const limit = quantity(dig(resources, "limits", resource));
    if (request === undefined) problems.push(`${name}: needs a ${resource} request`);
    if (limit === undefined) problems.push(`${name}: needs a ${resource} limit`);
    if (request !== undefined && limit !== undefined && request > limit) problems.push(`${name}: ${resource} request exceeds its limit`);
  }
  const security = dig(container, "securityContext");
  const want: ReadonlyArray<readonly [string, Json]> = [
    ["runAsNonRoot", true],
    ["readOnlyRootFilesystem", true],
    ["allowPrivilegeEscalation", false],
  ];
  for (const [field, value] of want) {
    if (dig(security, field) !== value) problems.push(`${name}: securityContext.${field} must be ${String(value)}`);
  }
  const user = dig(security, "runAsUser");
  if (user !== undefined && user === 0) problems.push(`${name}: securityContext.runAsUser must not be 0`);
  if (dig(security, "privileged") === true) problems.push(`${name}: must not be privileged`);
  const drop = dig(security, "capabilities", "drop");
  if (!Array.isArray(drop) || !drop.includes("ALL")) problems.push(`${name}: securityContext.capabilities.drop must include ALL`);
  const add = dig(security, "capabilities", "add");
  if (Array.isArray(add) && add.length > 0) problems.push(`${name}: must not add capabilities`);
  if (dig(security, "seccompProfile", "type") !== "RuntimeDefault") problems.push(`${name}: securityContext.seccompProfile.type must be RuntimeDefault`);
  return problems;
}

/** The greeter's own needs on top: its probes, its port, its ServiceAccount. */
export function checkGreeterService(service: KubeObject): string[] {
  const problems = checkKnativeService(service);
  const name = nameOf(service);
  const spec = dig(service, "spec", "template", "spec");
  const container = dig(spec, "containers", 0);
  if (dig(spec, "serviceAccountName") !== "member-greeter") problems.push(`${name}: must run as the ServiceAccount member-greeter`);
  if (dig(container, "livenessProbe", "httpGet", "path") !== "/healthz") problems.push(`${name}: liveness probe must be GET /healthz`);
  if (dig(container, "readinessProbe", "httpGet", "path") !== "/readyz") problems.push(`${name}: readiness probe must be GET /readyz`);
  const ports = dig(container, "ports");
  if (!Array.isArray(ports) || ports.length !== 1 || dig(ports, 0, "containerPort") !== 8080) {
    problems.push(`${name}: must declare the one container port 8080`);
  }
  return problems;
}

// ---------------------------------------------------------------------------
// Triggers: would a Trigger deliver an event to a subscriber?

/** Three-valued: "maybe" where the filter looks at something not known in advance. */
export type Match = "yes" | "no" | "maybe";

function and(values: readonly Match[]): Match {
  if (values.includes("no")) return "no";
  return values.includes("maybe") ? "maybe" : "yes";
}

function or(values: readonly Match[]): Match {
  if (values.includes("yes")) return "yes";
  return values.includes("maybe") ? "maybe" : "no";
}

function not(value: Match): Match {
  return value === "yes" ? "no" : value === "no" ? "yes" : "maybe";
}

/** Attributes of an event, as far as they are known; any other attribute may have any value. */
export type KnownAttributes = Readonly<Record<string, string>>;

function compareEach(attributes: unknown, event: KnownAttributes, test: (actual: string, wanted: string) => boolean): Match {
  if (!isMap(attributes) || Object.keys(attributes).length === 0) return "maybe";
  return and(
    Object.entries(attributes).map(([key, wanted]) => {
      if (typeof wanted !== "string") return "maybe";
      const actual = event[key];
      return actual === undefined ? "maybe" : test(actual, wanted) ? "yes" : "no";
    }),
  );
}

/** One expression of the `filters` dialect (exact, prefix, suffix, all, any, not, cesql). */
function matchExpression(expression: unknown, event: KnownAttributes): Match {
  if (!isMap(expression)) return "maybe";
  const keys = Object.keys(expression);
  if (keys.length !== 1) return "maybe";
  const key = keys[0] ?? "";
  const value = expression[key];
  switch (key) {
    case "exact":
      return compareEach(value, event, (actual, wanted) => actual === wanted);
    case "prefix":
      return compareEach(value, event, (actual, wanted) => actual.startsWith(wanted));
    case "suffix":
      return compareEach(value, event, (actual, wanted) => actual.endsWith(wanted));
    case "all":
      return Array.isArray(value) ? and(value.map((e) => matchExpression(e, event))) : "maybe";
    case "any":
      return Array.isArray(value) ? or(value.map((e) => matchExpression(e, event))) : "maybe";
    case "not":
      return not(matchExpression(value, event));
    default:
      // cesql, or a dialect this checker does not know: it could match.
      return "maybe";
  }
}

/**
 * Whether a Trigger passes an event. `spec.filters` (when non-empty)
 * overrides `spec.filter`; an absent or empty filter passes everything;
 * `filter.attributes` is an exact match where "" means any value.
 */
export function triggerMatches(trigger: KubeObject, event: KnownAttributes): Match {
  const filters = dig(trigger, "spec", "filters");
  if (Array.isArray(filters) && filters.length > 0) return and(filters.map((e) => matchExpression(e, event)));
  const attributes = dig(trigger, "spec", "filter", "attributes");
  if (!isMap(attributes)) return "yes";
  return and(
    Object.entries(attributes).map(([key, wanted]): Match => {
      if (wanted === "") return "yes";
      if (typeof wanted !== "string") return "maybe";
      const actual = event[key];
      return actual === undefined ? "maybe" : actual === wanted ? "yes" : "no";
    }),
  );
}

/** Whether a Trigger delivers to the Knative Service `service` (by ref, or by a URI naming its host). */
export function deliversTo(trigger: KubeObject, service: string): boolean {
  const subscriber = dig(trigger, "spec", "subscriber");
  const ref = dig(subscriber, "ref");
  if (isMap(ref)) {
    const apiVersion = dig(ref, "apiVersion");
    const namespace = dig(ref, "namespace");
    const sameNamespace = namespace === undefined || namespace === namespaceOf(trigger);
    return (
      dig(ref, "kind") === "Service" &&
      dig(ref, "name") === service &&
      sameNamespace &&
      typeof apiVersion === "string" &&
      (apiVersion.startsWith("serving.knative.dev/") || apiVersion === "v1")
    );
  }
  const uri = dig(subscriber, "uri");
  if (typeof uri !== "string") return false;
  try {
    return new URL(uri).hostname.split(".")[0] === service;
  } catch {
    // A relative or odd URI: it may well point at the service.
    return uri.includes(service);
  }
}

/**
 * Reply loops: a Trigger that delivers the greeter's own reply type back to
 * the greeter ("maybe" counts: a filter that cannot be ruled out is a loop).
 */
export function checkNoReplyLoop(objects: readonly KubeObject[], greeter: string, replyType: string): string[] {
  const reply: KnownAttributes = { type: replyType, specversion: "1.0" };
  return objects
    .filter((o) => o.kind === "Trigger" && deliversTo(o, greeter))
    .flatMap((trigger) => {
      const match = triggerMatches(trigger, reply);
      return match === "no" ? [] : [`Trigger ${nameOf(trigger)} ${match === "yes" ? "delivers" : "may deliver"} ${replyType} back to ${greeter}: a reply loop`];
    });
}
