// The Kubernetes and Knative manifests in config/: they render with kustomize,
// validate against Knative's CRDs (test/fixtures/knative-crds) and Kubernetes'
// own schema, grant exactly the least privilege,
// harden the greeter, and the Broker variant has no reply loop. Each checker
// is also shown a tampered copy, to prove it can fail.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { before, describe, it } from "node:test";
import { loadConfig, type Env } from "../functions/config.ts";
import { GREETING_TYPE } from "../functions/handler.ts";
import type { KubeApi, MemberStatus, StatusPatch } from "../functions/kube-client.ts";
import { createLogger } from "../functions/logger.ts";
import { MEMBER_API_VERSION, MEMBER_GROUP, MEMBER_KIND, MEMBER_PLURAL, MEMBER_VERSION, parseMember } from "../functions/member.ts";
import { createConverge } from "../functions/claim.ts";
import {
  checkBinding,
  checkGreeterService,
  checkKnativeService,
  checkNoReplyLoop,
  checkRole,
  deliversTo,
  grant,
  isPinnedImage,
  quantity,
  triggerMatches,
  type Grant,
} from "./support/checks.ts";
import {
  clone,
  containerEnvValue,
  configDir,
  dig,
  find,
  groupOf,
  isMap,
  knativeCrdDir,
  kustomize,
  nameOf,
  namespaceOf,
  readFolder,
  repoRoot,
  type JsonMap,
  type KubeObject,
} from "./support/kube.ts";
import { checkStructural, compileCrd, isBuiltinGroup, loadCrdFolder, validateBuiltin, type CrdVersionSchema } from "./support/schema.ts";

const GREETER = "member-greeter";
const SOURCE = "member-greeter-source";
const NAMESPACE = "default";
const APISERVER_TYPES = ["add", "update", "delete"].map((c) => `dev.knative.apiserver.resource.${c}`);

const GREETER_GRANTS: readonly Grant[] = [
  grant(MEMBER_GROUP, "members", "get"),
  grant(MEMBER_GROUP, "members", "list"),
  grant(MEMBER_GROUP, "members/status", "patch"),
  grant("events.k8s.io", "events", "create"),
];
const SOURCE_GRANTS: readonly Grant[] = ["get", "list", "watch"].map((verb) => grant(MEMBER_GROUP, "members", verb));

interface Variant {
  readonly name: string;
  readonly dir: string;
  objects: KubeObject[];
}

const variants: readonly Variant[] = [
  { name: "default (config)", dir: configDir, objects: [] },
  { name: "broker (config/overlays/broker)", dir: path.join(configDir, "overlays", "broker"), objects: [] },
  { name: "metrics (config/overlays/metrics)", dir: path.join(configDir, "overlays", "metrics"), objects: [] },
];
const [direct, broker, metrics] = variants as readonly [Variant, Variant, Variant];
/** The opt-in farewell finalizer: the default plus FAREWELLS=finalizer and patch on members. */
const finalizer: Variant = {
  name: "farewell-finalizer (config/overlays/farewell-finalizer)",
  dir: path.join(configDir, "overlays", "farewell-finalizer"),
  objects: [],
};

let knative: Map<string, CrdVersionSchema>;
let samples: KubeObject[];

before(async () => {
  for (const variant of [...variants, finalizer]) variant.objects = await kustomize(variant.dir);
  knative = await loadCrdFolder(knativeCrdDir);
  samples = await readFolder(path.join(configDir, "samples"));
});

function knativeSchema(object: KubeObject): CrdVersionSchema {
  const schema = knative.get(`${object.apiVersion} ${object.kind}`);
  assert.ok(schema, `no Knative CRD for ${object.apiVersion} ${object.kind}`);
  return schema;
}

function memberSchema(objects: readonly KubeObject[]): CrdVersionSchema {
  const crd = find(objects, "CustomResourceDefinition", `${MEMBER_PLURAL}.${MEMBER_GROUP}`);
  const version = compileCrd(crd).find((v) => v.version === MEMBER_VERSION);
  assert.ok(version, `the Member CRD has no version ${MEMBER_VERSION}`);
  return version;
}

function inventory(objects: readonly KubeObject[]): string[] {
  return objects.map((o) => `${groupOf(o.apiVersion) || "core"}/${o.kind}/${nameOf(o)}`).sort();
}

/** Applies a change to a copy of the object and returns the copy. */
function tampered(object: KubeObject, change: (copy: JsonMap) => void): KubeObject {
  const copy = clone(object);
  change(copy);
  return copy;
}

/** The container of a Knative Service, as a mutable map (tests only). */
function containerOf(service: JsonMap): JsonMap {
  const container = dig(service, "spec", "template", "spec", "containers", 0);
  assert.ok(isMap(container), "the Service has no container");
  return container;
}

function mapAt(value: unknown, ...keys: (string | number)[]): JsonMap {
  const found = dig(value, ...keys);
  assert.ok(isMap(found), `nothing at ${keys.join(".")}`);
  return found;
}

describe("kustomize renders every variant", () => {
  it("renders config/ to the CRD, RBAC, greeter, source and resync, all in namespace default", () => {
    assert.deepEqual(inventory(direct.objects), [
      `apiextensions.k8s.io/CustomResourceDefinition/${MEMBER_PLURAL}.${MEMBER_GROUP}`,
      "core/ServiceAccount/member-greeter",
      "core/ServiceAccount/member-greeter-source",
      "rbac.authorization.k8s.io/Role/member-greeter",
      "rbac.authorization.k8s.io/Role/member-greeter-source",
      "rbac.authorization.k8s.io/RoleBinding/member-greeter",
      "rbac.authorization.k8s.io/RoleBinding/member-greeter-source",
      "serving.knative.dev/Service/member-greeter",
      "sources.knative.dev/ApiServerSource/member-greeter-source",
      "sources.knative.dev/PingSource/member-greeter-resync",
    ]);
  });

  it("renders the farewell-finalizer variant: the same objects; FAREWELLS=finalizer and patch on members, nothing more", () => {
    assert.deepEqual(inventory(finalizer.objects), inventory(direct.objects));
    const service = find(finalizer.objects, "Service", GREETER, "serving.knative.dev");
    const env = dig(service, "spec", "template", "spec", "containers", 0, "env");
    assert.ok(Array.isArray(env));
    assert.deepEqual(
      env.filter((e) => dig(e, "name") === "FAREWELLS").map((e) => dig(e, "value")),
      ["finalizer"],
    );
    assert.equal(loadConfig(Object.fromEntries(env.map((e) => [String(dig(e, "name")), String(dig(e, "value"))]))).farewells, "finalizer");
    assert.deepEqual(checkRole(find(finalizer.objects, "Role", GREETER), [...GREETER_GRANTS, grant(MEMBER_GROUP, "members", "patch")]), []);
    assert.deepEqual(checkRole(find(finalizer.objects, "Role", SOURCE), SOURCE_GRANTS), []);
    for (const object of finalizer.objects) {
      if (object.kind === "Role" || (object.kind === "Service" && object.apiVersion.startsWith("serving."))) continue;
      assert.deepEqual(object, find(direct.objects, object.kind, nameOf(object)), `${object.kind} ${nameOf(object)} differs from config/`);
    }
  });

  it("renders the metrics variant: the same objects; the revision template asks Prometheus to scrape /metrics on the function's port, nothing more", async () => {
    assert.deepEqual(inventory(metrics.objects), inventory(direct.objects));
    const service = find(metrics.objects, "Service", GREETER, "serving.knative.dev");
    const plain = find(direct.objects, "Service", GREETER, "serving.knative.dev");
    const annotations = mapAt(service, "spec", "template", "metadata", "annotations");
    const port = dig(containerOf(service), "ports", 0, "containerPort");
    assert.deepEqual(Object.fromEntries(Object.entries(annotations).filter(([key]) => key.startsWith("prometheus.io/"))), {
      "prometheus.io/scrape": "true",
      "prometheus.io/port": String(port),
      "prometheus.io/path": "/metrics",
    });
    // The port scraped is the one the function serves /metrics on, and metrics are on.
    const env = dig(containerOf(service), "env");
    assert.ok(Array.isArray(env));
    const config = loadConfig(Object.fromEntries(env.map((e) => [String(dig(e, "name")), String(dig(e, "value"))])));
    assert.equal(config.metrics, "on");
    assert.equal(config.port, 8080, "Knative passes the containerPort as PORT; the default matches it");
    assert.equal(port, config.port);
    const stripped = tampered(service, (s) => {
      const a = mapAt(s, "spec", "template", "metadata", "annotations");
      for (const key of Object.keys(a)) if (key.startsWith("prometheus.io/")) delete a[key];
    });
    assert.deepEqual(stripped, plain, "the annotations are all the overlay changes on the Service");
    for (const object of metrics.objects) {
      if (object.kind === "Service" && object.apiVersion.startsWith("serving.")) continue;
      assert.deepEqual(object, find(direct.objects, object.kind, nameOf(object)), `${object.kind} ${nameOf(object)} differs from config/`);
    }
  });

  it("the resync PingSource ticks every 5 minutes and sends to the greeter", () => {
    const ping = find(direct.objects, "PingSource", "member-greeter-resync");
    assert.equal(dig(ping, "spec", "schedule"), "*/5 * * * *");
    assert.deepEqual(dig(ping, "spec", "sink", "ref"), { apiVersion: "serving.knative.dev/v1", kind: "Service", name: GREETER });
    assert.deepEqual(JSON.parse(String(dig(ping, "spec", "data"))), { resync: "members" });
  });

  it("renders the Broker variant: the same plus Broker, Triggers and the greeting display", () => {
    const extra = inventory(broker.objects).filter((entry) => !inventory(direct.objects).includes(entry));
    assert.deepEqual(extra, [
      "eventing.knative.dev/Broker/member-greeter",
      "eventing.knative.dev/Trigger/greeting-display",
      "eventing.knative.dev/Trigger/member-greeter-add",
      "eventing.knative.dev/Trigger/member-greeter-delete",
      "eventing.knative.dev/Trigger/member-greeter-update",
      "serving.knative.dev/Service/greeting-display",
    ]);
    assert.equal(inventory(broker.objects).length, inventory(direct.objects).length + extra.length);
  });

  for (const variant of variants) {
    it(`${variant.name}: namespaced objects in ${NAMESPACE}, the CRD cluster-wide, no Namespace, no sample Member`, () => {
      for (const object of variant.objects) {
        if (object.kind === "CustomResourceDefinition") assert.equal(namespaceOf(object), undefined);
        else assert.equal(namespaceOf(object), NAMESPACE, `${object.kind} ${nameOf(object)}`);
        assert.notEqual(object.kind, "Namespace");
        assert.notEqual(object.apiVersion, MEMBER_API_VERSION, "sample Members are applied by hand, not by the kustomization");
      }
    });
  }
});

describe("Knative objects validate against Knative's own CRDs", () => {
  it("reads Knative's CRDs from the repository's own fixtures", () => {
    assert.equal(path.relative(repoRoot, knativeCrdDir), path.join("test", "fixtures", "knative-crds"));
    assert.deepEqual([...knative.keys()].sort(), [
      "eventing.knative.dev/v1 Broker",
      "eventing.knative.dev/v1 Trigger",
      "serving.knative.dev/v1 Service",
      "sources.knative.dev/v1 ApiServerSource",
      "sources.knative.dev/v1 PingSource",
      "sources.knative.dev/v1beta2 PingSource",
    ]);
  });

  for (const variant of variants) {
    it(`${variant.name}: every object is a built-in kind, a Knative kind or the Member CRD`, () => {
      for (const object of variant.objects) {
        const known = isBuiltinGroup(object.apiVersion) || knative.has(`${object.apiVersion} ${object.kind}`);
        assert.ok(known, `no schema to validate ${object.apiVersion} ${object.kind} ${nameOf(object)} against`);
      }
    });

    it(`${variant.name}: every Knative object validates`, () => {
      const knativeObjects = variant.objects.filter((o) => groupOf(o.apiVersion).endsWith("knative.dev"));
      // Service, ApiServerSource, PingSource; the Broker variant adds a Broker, four Triggers and the display Service.
      assert.equal(knativeObjects.length, variant === broker ? 9 : 3);
      for (const object of knativeObjects) {
        assert.deepEqual(knativeSchema(object).validate(object), [], `${object.kind} ${nameOf(object)}`);
      }
    });
  }

  it("rejects tampered Knative objects: a misspelt field, a wrong type, a missing required field", () => {
    const service = find(broker.objects, "Service", GREETER, "serving.knative.dev");
    const schema = knativeSchema(service);
    const misspelt = tampered(service, (s) => {
      const security = mapAt(containerOf(s), "securityContext");
      delete security["readOnlyRootFilesystem"];
      security["readOnlyRootFileSystem"] = true;
    });
    assert.match(schema.validate(misspelt).join("\n"), /readOnlyRootFileSystem/);
    const wrongType = tampered(service, (s) => {
      mapAt(s, "spec", "template", "spec")["containerConcurrency"] = "twenty";
    });
    assert.match(schema.validate(wrongType).join("\n"), /containerConcurrency must be integer/);
    const badMetadata = tampered(service, (s) => {
      mapAt(s, "metadata")["label"] = { a: "b" };
    });
    assert.match(schema.validate(badMetadata).join("\n"), /unknown field "label"/);

    const source = find(direct.objects, "ApiServerSource", SOURCE);
    const noResources = tampered(source, (s) => {
      delete mapAt(s, "spec")["resources"];
    });
    assert.match(knativeSchema(source).validate(noResources).join("\n"), /resources/);

    const trigger = find(broker.objects, "Trigger", `${GREETER}-add`);
    const badFilter = tampered(trigger, (t) => {
      mapAt(t, "spec")["filter"] = { attribute: { type: "dev.knative.apiserver.resource.add" } };
    });
    assert.match(knativeSchema(trigger).validate(badFilter).join("\n"), /attribute/);
  });
});

describe("built-in objects validate against Kubernetes' schema", () => {
  for (const variant of variants) {
    it(`${variant.name}: every built-in object validates`, async () => {
      const builtins = variant.objects.filter((o) => isBuiltinGroup(o.apiVersion));
      // The CRD, two ServiceAccounts, two Roles, two RoleBindings.
      assert.equal(builtins.length, 7);
      for (const object of builtins) {
        assert.deepEqual(await validateBuiltin(object), [], `${object.kind} ${nameOf(object)}`);
      }
    });
  }

  it("rejects tampered built-in objects", async () => {
    const role = find(direct.objects, "Role", GREETER);
    const misspelt = tampered(role, (r) => {
      const rule = mapAt(r, "rules", 0);
      rule["verb"] = rule["verbs"] ?? null;
      delete rule["verbs"];
    });
    const roleProblems = (await validateBuiltin(misspelt)).join("\n");
    assert.match(roleProblems, /verbs/);
    assert.match(roleProblems, /unknown field "verb"/);

    const binding = find(direct.objects, "RoleBinding", GREETER);
    assert.match((await validateBuiltin(tampered(binding, (b) => void delete b["roleRef"]))).join("\n"), /roleRef/);

    const account = find(direct.objects, "ServiceAccount", GREETER);
    const wrongType = tampered(account, (a) => {
      a["automountServiceAccountToken"] = "yes";
    });
    assert.match((await validateBuiltin(wrongType)).join("\n"), /automountServiceAccountToken/);

    const crd = find(direct.objects, "CustomResourceDefinition", `${MEMBER_PLURAL}.${MEMBER_GROUP}`);
    const badSchema = tampered(crd, (c) => {
      mapAt(c, "spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec", "properties", "memberOf")["maxlength"] = 63;
    });
    assert.match((await validateBuiltin(badSchema)).join("\n"), /unknown field "maxlength"/);

    assert.match((await validateBuiltin({ apiVersion: "v1", kind: "ServiceAcount", metadata: { name: "x" } })).join("\n"), /not a built-in/);
  });
});

describe("the Member CRD", () => {
  it("defines the Member the function reads and writes: group, version, kind, plural, namespaced, status subresource", () => {
    const crd = find(direct.objects, "CustomResourceDefinition", `${MEMBER_PLURAL}.${MEMBER_GROUP}`);
    assert.equal(dig(crd, "spec", "group"), MEMBER_GROUP);
    assert.equal(dig(crd, "spec", "names", "kind"), MEMBER_KIND);
    // ApiServerSource guesses the plural from the kind: lower case plus "s".
    assert.equal(dig(crd, "spec", "names", "plural"), MEMBER_PLURAL);
    assert.equal(MEMBER_PLURAL, `${MEMBER_KIND.toLowerCase()}s`);
    assert.equal(dig(crd, "spec", "scope"), "Namespaced");
    const versions = dig(crd, "spec", "versions");
    assert.ok(Array.isArray(versions) && versions.length === 1);
    assert.equal(dig(versions, 0, "name"), MEMBER_VERSION);
    assert.equal(dig(versions, 0, "served"), true);
    assert.equal(dig(versions, 0, "storage"), true);
    assert.deepEqual(dig(versions, 0, "subresources"), { status: {} });
  });

  it("has a structural schema with a bounded spec.memberOf and the status fields", () => {
    const crd = find(direct.objects, "CustomResourceDefinition", `${MEMBER_PLURAL}.${MEMBER_GROUP}`);
    const schema = dig(crd, "spec", "versions", 0, "schema", "openAPIV3Schema");
    assert.deepEqual(checkStructural(schema), []);
    assert.equal(dig(schema, "properties", "spec", "properties", "memberOf", "type"), "string");
    assert.equal(dig(schema, "properties", "spec", "properties", "memberOf", "maxLength"), 63);
    assert.deepEqual(dig(schema, "properties", "spec", "required"), undefined, "memberOf is optional");
    const status = dig(schema, "properties", "status", "properties");
    assert.deepEqual(isMap(status) ? Object.keys(status).sort() : [], ["farewellAt", "greetedAt", "greeting", "observedGeneration", "pendingEvent", "team"]);
    assert.deepEqual(checkStructural({ type: "object", properties: { spec: { properties: {} } } }), [".spec: has no type"]);
  });

  it("shows Team, Greeted and Age in kubectl get members", () => {
    const crd = find(direct.objects, "CustomResourceDefinition", `${MEMBER_PLURAL}.${MEMBER_GROUP}`);
    const columns = dig(crd, "spec", "versions", 0, "additionalPrinterColumns");
    assert.ok(Array.isArray(columns));
    const byName = new Map(columns.map((c) => [dig(c, "name"), c]));
    assert.equal(dig(byName.get("Team"), "jsonPath"), ".spec.memberOf");
    assert.equal(dig(byName.get("Greeted"), "jsonPath"), ".status.team");
    assert.equal(dig(byName.get("Age"), "jsonPath"), ".metadata.creationTimestamp");
    assert.equal(dig(byName.get("Age"), "type"), "date");
  });

  it("accepts the samples: patrick in the team blue, and a member of no team", () => {
    const schema = memberSchema(direct.objects);
    assert.equal(samples.length, 2);
    for (const sample of samples) assert.deepEqual(schema.validate(sample), [], nameOf(sample));
    assert.equal(dig(find(samples, MEMBER_KIND, "patrick"), "spec", "memberOf"), "blue");
    assert.ok(samples.some((s) => dig(s, "spec", "memberOf") === undefined || dig(s, "spec", "memberOf") === ""));
  });

  it("accepts the statuses the function writes through the status subresource: a welcome, a farewell", async () => {
    const schema = memberSchema(direct.objects);
    const patrick = find(samples, MEMBER_KIND, "patrick");
    let stored = tampered(patrick, (p) => {
      mapAt(p, "metadata")["namespace"] = NAMESPACE;
      mapAt(p, "metadata")["generation"] = 1;
      mapAt(p, "metadata")["resourceVersion"] = "1";
    });
    const written: MemberStatus[] = [];
    let version = 1;
    const write = (patch: StatusPatch): Promise<JsonMap> => {
      if ("greeting" in patch) written.push(patch);
      stored = tampered(stored, (p) => {
        // A merge patch: null removes (the owed Event's mark, once it is written).
        const merged: JsonMap = { ...(isMap(p["status"]) ? p["status"] : {}), ...(JSON.parse(JSON.stringify(patch)) as JsonMap) };
        p["status"] = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== null));
        mapAt(p, "metadata")["resourceVersion"] = String(++version);
      });
      return Promise.resolve(stored);
    };
    const api: KubeApi = {
      getMember: () => Promise.resolve(stored),
      listMembers: () => Promise.resolve({ items: [stored], continue: undefined }),
      patchMemberStatus: (_ref, _version, status) => write(status),
      patchMemberFinalizers: (_ref, _version, finalizers) => {
        stored = tampered(stored, (p) => void (mapAt(p, "metadata")["finalizers"] = [...finalizers]));
        return Promise.resolve(stored);
      },
      createEvent: () => Promise.resolve(),
    };
    const converge = createConverge({
      api: () => Promise.resolve(api),
      policy: { finalizer: true },
      logger: createLogger({ level: "silent" }),
      now: () => new Date("2026-06-01T12:00:00Z"),
    });
    const welcome = await converge(parseMember(stored), AbortSignal.timeout(5_000));
    assert.equal(welcome?.greeting.text, "welcome patrick to the team blue");
    stored = tampered(stored, (p) => void (mapAt(p, "metadata")["deletionTimestamp"] = "2026-06-01T12:05:00Z"));
    const farewell = await converge(parseMember(stored), AbortSignal.timeout(5_000));
    assert.equal(farewell?.greeting.text, "sad to see you go patrick");
    assert.equal(written.length, 2);
    for (const status of written) {
      const withStatus = tampered(stored, (p) => void (p["status"] = JSON.parse(JSON.stringify(status)) as JsonMap));
      assert.deepEqual(schema.validate(withStatus), [], JSON.stringify(status));
    }
    assert.equal(written[0]?.team, "blue");
    assert.equal(written[1]?.farewellAt, "2026-06-01T12:00:00.000Z");
    assert.deepEqual(
      written.map((s) => s.pendingEvent?.reason),
      ["Welcomed", "SaidFarewell"],
    );
    // The farewell's Event was written before the finalizer went: its mark is cleared.
    assert.equal(dig(stored, "status", "pendingEvent"), undefined);
    assert.deepEqual(schema.validate(stored), []);
  });

  it("rejects Members it should not accept", () => {
    const schema = memberSchema(direct.objects);
    const patrick = find(samples, MEMBER_KIND, "patrick");
    const cases: ReadonlyArray<readonly [string, (m: JsonMap) => void, RegExp]> = [
      ["a team longer than 63 characters", (m) => void (mapAt(m, "spec")["memberOf"] = "b".repeat(64)), /memberOf must NOT have more than 63/],
      ["a team with a space", (m) => void (mapAt(m, "spec")["memberOf"] = "blue team"), /memberOf must match pattern/],
      ["a team that is a number", (m) => void (mapAt(m, "spec")["memberOf"] = 7), /memberOf must be string/],
      ["an unknown spec field", (m) => void (mapAt(m, "spec")["team"] = "blue"), /additional properties: team/],
      ["greetedAt that is no date-time", (m) => void (m["status"] = { greetedAt: "yesterday" }), /greetedAt must match format "date-time"/],
      ["a negative observedGeneration", (m) => void (m["status"] = { observedGeneration: -1 }), /observedGeneration must be >= 0/],
      ["another kind", (m) => void (m["kind"] = "Team"), /kind must be Member/],
    ];
    for (const [what, change, expected] of cases) {
      assert.match(schema.validate(tampered(patrick, change)).join("\n"), expected, what);
    }
    assert.deepEqual(schema.validate(tampered(patrick, (m) => void (mapAt(m, "spec")["memberOf"] = ""))), [], '"" means no team');
    assert.deepEqual(schema.validate(tampered(patrick, (m) => void (mapAt(m, "spec")["memberOf"] = "Team_7.a-b"))), []);
  });
});

describe("RBAC is exactly the least privilege", () => {
  for (const variant of variants) {
    it(`${variant.name}: the greeter may get members, patch members/status and create events, nothing more`, () => {
      assert.deepEqual(checkRole(find(variant.objects, "Role", GREETER), GREETER_GRANTS), []);
      assert.deepEqual(checkBinding(find(variant.objects, "RoleBinding", GREETER), GREETER, GREETER), []);
    });

    it(`${variant.name}: the source may get, list and watch members, nothing more`, () => {
      assert.deepEqual(checkRole(find(variant.objects, "Role", SOURCE), SOURCE_GRANTS), []);
      assert.deepEqual(checkBinding(find(variant.objects, "RoleBinding", SOURCE), SOURCE, SOURCE), []);
    });

    it(`${variant.name}: no other Role, binding or cluster-wide RBAC; each identity is its own ServiceAccount`, () => {
      const rbac = variant.objects
        .filter((o) => groupOf(o.apiVersion) === "rbac.authorization.k8s.io")
        .map((o) => `${o.kind}/${nameOf(o)}`)
        .sort();
      assert.deepEqual(rbac, [`Role/${GREETER}`, `Role/${SOURCE}`, `RoleBinding/${GREETER}`, `RoleBinding/${SOURCE}`]);
      const accounts = variant.objects
        .filter((o) => o.kind === "ServiceAccount")
        .map(nameOf)
        .sort();
      assert.deepEqual(accounts, [GREETER, SOURCE]);
      assert.equal(dig(find(variant.objects, "Service", GREETER, "serving.knative.dev"), "spec", "template", "spec", "serviceAccountName"), GREETER);
      assert.equal(dig(find(variant.objects, "ApiServerSource", SOURCE), "spec", "serviceAccountName"), SOURCE);
    });
  }

  it("catches roles and bindings that grant too much, too little, or to the wrong subject", () => {
    const role = find(direct.objects, "Role", GREETER);
    const rule = (r: JsonMap, i: number): JsonMap => mapAt(r, "rules", i);
    const cases: ReadonlyArray<readonly [string, (r: JsonMap) => void, RegExp]> = [
      ["an extra verb", (r) => void (rule(r, 0)["verbs"] = ["get", "list", "watch"]), /grants more than needed: helloworld.apimeister.com members watch/],
      ["a wildcard verb", (r) => void (rule(r, 2)["verbs"] = ["*"]), /wildcard "\*"/],
      ["a wildcard resource", (r) => void (rule(r, 0)["resources"] = ["*"]), /wildcard/],
      ["write access to spec", (r) => void (rule(r, 1)["resources"] = ["members/status", "members"]), /members patch/],
      ["a missing permission", (r) => void (r["rules"] = [rule(r, 0), rule(r, 1)]), /lacks events\.k8s\.io events create/],
      ["resourceNames", (r) => void (rule(r, 0)["resourceNames"] = ["patrick"]), /unexpected resourceNames/],
      ["a ClusterRole", (r) => void (r["kind"] = "ClusterRole"), /must be a namespaced Role/],
      ["core events instead of events.k8s.io's", (r) => void (rule(r, 2)["apiGroups"] = [""]), /lacks events\.k8s\.io events create/],
    ];
    for (const [what, change, expected] of cases) {
      assert.match(checkRole(tampered(role, change), GREETER_GRANTS).join("\n"), expected, what);
    }
    const binding = find(direct.objects, "RoleBinding", GREETER);
    const wrongSubject = tampered(binding, (b) => void (b["subjects"] = [{ kind: "ServiceAccount", name: "default", namespace: NAMESPACE }]));
    assert.match(checkBinding(wrongSubject, GREETER, GREETER).join("\n"), /subject must be the ServiceAccount/);
    const otherNamespace = tampered(binding, (b) => void (b["subjects"] = [{ kind: "ServiceAccount", name: GREETER, namespace: "kube-system" }]));
    assert.match(checkBinding(otherNamespace, GREETER, GREETER).join("\n"), /binding's namespace/);
    const clusterRole = tampered(binding, (b) => void (mapAt(b, "roleRef")["kind"] = "ClusterRole"));
    assert.match(checkBinding(clusterRole, GREETER, GREETER).join("\n"), /roleRef must be the Role/);
  });
});

describe("the greeter's Knative Service", () => {
  for (const variant of variants) {
    it(`${variant.name}: cluster-local, scales to zero, pinned image, probes, resources, hardened container`, () => {
      assert.deepEqual(checkGreeterService(find(variant.objects, "Service", GREETER, "serving.knative.dev")), []);
    });
  }

  it("sets only variables the function reads, with values it accepts, and leaves PORT to Knative", () => {
    const service = find(direct.objects, "Service", GREETER, "serving.knative.dev");
    const env = dig(service, "spec", "template", "spec", "containers", 0, "env");
    assert.ok(Array.isArray(env));
    const values: Record<string, string> = {};
    for (const entry of env) {
      const name = dig(entry, "name");
      const value = dig(entry, "value");
      assert.ok(typeof name === "string" && typeof value === "string", "plain name/value env entries only");
      values[name] = value;
    }
    const read = new Set<string>();
    const recording = new Proxy<Env>(values, {
      get(target, key) {
        if (typeof key === "string") read.add(key);
        return typeof key === "string" ? target[key] : undefined;
      },
    });
    const config = loadConfig(recording);
    for (const name of Object.keys(values)) assert.ok(read.has(name), `${name} is not read by functions/config.ts`);
    // Knative sets PORT (a reserved name) and the function must listen on all interfaces.
    // WATCH_NAMESPACE unset: the resync lists the function's own namespace, the ApiServerSource's.
    assert.deepEqual([...read].filter((name) => !(name in values)).sort(), ["HOST", "PORT", "WATCH_NAMESPACE"]);
    assert.equal(config.logLevel, "info");
    assert.equal(config.recordGreetings, "auto");
    assert.ok(
      config.shutdownGraceMs < Number(dig(service, "spec", "template", "spec", "timeoutSeconds")) * 1000,
      "shutdown grace within Knative's termination grace",
    );
  });

  for (const variant of variants) {
    it(`${variant.name}: GREETING_SOURCE names the greeter's Service in its namespace`, () => {
      const service = find(variant.objects, "Service", GREETER, "serving.knative.dev");
      assert.equal(
        containerEnvValue(service, "GREETING_SOURCE"),
        `/apis/serving.knative.dev/v1/namespaces/${String(namespaceOf(service))}/services/${GREETER}`,
      );
      // config/README.md's own-overlay recipe patches it by index.
      assert.equal(dig(service, "spec", "template", "spec", "containers", 0, "env", 1, "name"), "GREETING_SOURCE");
    });
  }

  it("config/README.md's own-overlay recipe moves everything to another namespace and image", async () => {
    const readme = await readFile(path.join(configDir, "README.md"), "utf8");
    const recipe = /```yaml\n# my-greeter\/kustomization\.yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(recipe, "config/README.md has the my-greeter/kustomization.yaml example");
    const dir = await mkdtemp(path.join(tmpdir(), "my-greeter-"));
    try {
      // kustomize takes relative paths only.
      const adapted = recipe.replace("- ../config ", `- ${path.relative(dir, configDir)} `);
      assert.notEqual(adapted, recipe, "the recipe's resources entry is - ../config");
      await writeFile(path.join(dir, "kustomization.yaml"), adapted);
      const objects = await kustomize(dir);
      assert.equal(objects.length, direct.objects.length);
      for (const object of objects) {
        if (object.kind !== "CustomResourceDefinition") assert.equal(namespaceOf(object), "greeters", `${object.kind} ${nameOf(object)}`);
      }
      for (const name of [GREETER, SOURCE]) assert.deepEqual(checkBinding(find(objects, "RoleBinding", name), name, name), []);
      const service = find(objects, "Service", GREETER, "serving.knative.dev");
      assert.equal(dig(service, "spec", "template", "spec", "containers", 0, "image"), "registry.example.com/member-greeter:0.1.1");
      const env = dig(service, "spec", "template", "spec", "containers", 0, "env");
      assert.equal(dig(env, 1, "value"), "/apis/serving.knative.dev/v1/namespaces/greeters/services/member-greeter");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("runs the image tagged with the package's version", async () => {
    const service = find(direct.objects, "Service", GREETER, "serving.knative.dev");
    const pkg = JSON.parse(await readFile(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
    assert.equal(dig(service, "spec", "template", "spec", "containers", 0, "image"), `ghcr.io/apimeister/member-greeter:${pkg.version}`);
  });

  it("catches a Service that is public, always on, unpinned, unbounded or not hardened", () => {
    const service = find(direct.objects, "Service", GREETER, "serving.knative.dev");
    const security = (s: JsonMap): JsonMap => mapAt(containerOf(s), "securityContext");
    const cases: ReadonlyArray<readonly [string, (s: JsonMap) => void, RegExp]> = [
      ["public", (s) => void delete mapAt(s, "metadata", "labels")["networking.knative.dev/visibility"], /cluster-local/],
      ["min-scale 1", (s) => void (mapAt(s, "spec", "template", "metadata", "annotations")["autoscaling.knative.dev/min-scale"] = "1"), /scale to zero/],
      ["legacy minScale 2", (s) => void (mapAt(s, "spec", "template", "metadata", "annotations")["autoscaling.knative.dev/minScale"] = "2"), /scale to zero/],
      [":latest", (s) => void (containerOf(s)["image"] = "ghcr.io/apimeister/member-greeter:latest"), /pinned/],
      ["no tag", (s) => void (containerOf(s)["image"] = "ghcr.io/apimeister/member-greeter"), /pinned/],
      ["no memory limit", (s) => void delete mapAt(containerOf(s), "resources", "limits")["memory"], /memory limit/],
      ["no requests", (s) => void delete mapAt(containerOf(s), "resources")["requests"], /cpu request/],
      ["request above limit", (s) => void (mapAt(containerOf(s), "resources", "requests")["cpu"] = "2"), /cpu request exceeds/],
      ["runAsNonRoot off", (s) => void delete security(s)["runAsNonRoot"], /runAsNonRoot/],
      ["writable root", (s) => void (security(s)["readOnlyRootFilesystem"] = false), /readOnlyRootFilesystem/],
      ["privilege escalation", (s) => void delete security(s)["allowPrivilegeEscalation"], /allowPrivilegeEscalation/],
      ["root user", (s) => void (security(s)["runAsUser"] = 0), /runAsUser/],
      ["privileged", (s) => void (security(s)["privileged"] = true), /privileged/],
      ["capabilities kept", (s) => void (security(s)["capabilities"] = { drop: ["NET_RAW"] }), /drop must include ALL/],
      ["capability added", (s) => void (security(s)["capabilities"] = { drop: ["ALL"], add: ["NET_ADMIN"] }), /add capabilities/],
      ["no seccomp", (s) => void delete security(s)["seccompProfile"], /seccompProfile/],
      ["no liveness probe", (s) => void delete containerOf(s)["livenessProbe"], /liveness/],
      ["wrong readiness path", (s) => void (mapAt(containerOf(s), "readinessProbe", "httpGet")["path"] = "/healthz"), /readiness/],
      ["another port", (s) => void (containerOf(s)["ports"] = [{ containerPort: 3000 }]), /8080/],
      ["default ServiceAccount", (s) => void delete mapAt(s, "spec", "template", "spec")["serviceAccountName"], /ServiceAccount member-greeter/],
    ];
    for (const [what, change, expected] of cases) {
      assert.match(checkGreeterService(tampered(service, change)).join("\n"), expected, what);
    }
  });

  it("reads quantities and image references as Kubernetes does", () => {
    assert.equal(quantity("50m"), 0.05);
    assert.equal(quantity("1"), 1);
    assert.equal(quantity("64Mi"), 64 * 2 ** 20);
    assert.equal(quantity("1.5Gi"), 1.5 * 2 ** 30);
    assert.equal(quantity("lots"), undefined);
    assert.ok(isPinnedImage("ghcr.io/apimeister/member-greeter:0.1.0"));
    assert.ok(isPinnedImage(`localhost:5000/greeter@sha256:${"a".repeat(64)}`));
    assert.ok(!isPinnedImage("localhost:5000/greeter"), "a registry port is not a tag");
    assert.ok(!isPinnedImage("greeter:latest"));
  });
});

describe("the ApiServerSource", () => {
  for (const variant of variants) {
    it(`${variant.name}: watches Members in Resource mode as member-greeter-source`, () => {
      const source = find(variant.objects, "ApiServerSource", SOURCE);
      assert.equal(dig(source, "spec", "mode"), "Resource");
      assert.deepEqual(dig(source, "spec", "resources"), [{ apiVersion: MEMBER_API_VERSION, kind: MEMBER_KIND }]);
      assert.equal(dig(source, "spec", "serviceAccountName"), SOURCE);
      assert.equal(dig(source, "spec", "owner"), undefined);
    });
  }

  it("default: sends straight to the greeter", () => {
    const sink = dig(find(direct.objects, "ApiServerSource", SOURCE), "spec", "sink");
    assert.deepEqual(sink, { ref: { apiVersion: "serving.knative.dev/v1", kind: "Service", name: GREETER } });
  });

  it("broker: sends to the Broker member-greeter, which exists", () => {
    const sink = dig(find(broker.objects, "ApiServerSource", SOURCE), "spec", "sink");
    assert.deepEqual(sink, { ref: { apiVersion: "eventing.knative.dev/v1", kind: "Broker", name: GREETER } });
    find(broker.objects, "Broker", GREETER);
  });
});

describe("the Broker variant routes without a reply loop", () => {
  const triggers = (): KubeObject[] => broker.objects.filter((o) => o.kind === "Trigger");

  it("no Trigger delivers the greeting type back to the greeter", () => {
    assert.deepEqual(checkNoReplyLoop(broker.objects, GREETER, GREETING_TYPE), []);
  });

  it("each apiserver event type the greeter handles reaches it, and only those do", () => {
    for (const type of APISERVER_TYPES) {
      const to = triggers().filter((t) => deliversTo(t, GREETER) && triggerMatches(t, { type }) === "yes");
      assert.equal(to.length, 1, `${type} reaches the greeter exactly once`);
    }
    for (const trigger of triggers().filter((t) => deliversTo(t, GREETER))) {
      assert.ok(
        APISERVER_TYPES.some((type) => triggerMatches(trigger, { type }) === "yes"),
        nameOf(trigger),
      );
      assert.equal(triggerMatches(trigger, { type: "dev.knative.apiserver.ref.add" }), "no", `${nameOf(trigger)} passes Reference-mode events`);
    }
  });

  it("greetings reach the event display, and nothing else does", () => {
    const display = triggers().filter((t) => deliversTo(t, "greeting-display"));
    assert.equal(display.length, 1);
    const [trigger] = display;
    assert.ok(trigger);
    assert.equal(triggerMatches(trigger, { type: GREETING_TYPE }), "yes");
    for (const type of APISERVER_TYPES) assert.equal(triggerMatches(trigger, { type }), "no");
    assert.deepEqual(checkKnativeService(find(broker.objects, "Service", "greeting-display")), []);
  });

  it("every Trigger uses the Broker member-greeter", () => {
    for (const trigger of triggers()) assert.equal(dig(trigger, "spec", "broker"), GREETER, nameOf(trigger));
  });

  it("catches Triggers that would loop the greeting back", () => {
    const base = find(broker.objects, "Trigger", `${GREETER}-add`);
    const spec = (t: JsonMap): JsonMap => mapAt(t, "spec");
    const loops: ReadonlyArray<readonly [string, (t: JsonMap) => void]> = [
      ["no filter", (t) => void delete spec(t)["filter"]],
      ["an empty filter", (t) => void (spec(t)["filter"] = {})],
      ["an empty attributes filter", (t) => void (spec(t)["filter"] = { attributes: {} })],
      ['type "" (any)', (t) => void (spec(t)["filter"] = { attributes: { type: "" } })],
      ["the greeting type", (t) => void (spec(t)["filter"] = { attributes: { type: GREETING_TYPE } })],
      ["only a source filter", (t) => void (spec(t)["filter"] = { attributes: { source: "https://10.96.0.1:443" } })],
      ["filters prefix com.apimeister", (t) => void (spec(t)["filters"] = [{ prefix: { type: "com.apimeister." } }])],
      [
        "filters any of add or greeting",
        (t) => void (spec(t)["filters"] = [{ any: [{ exact: { type: APISERVER_TYPES[0] ?? "" } }, { suffix: { type: ".greeting" } }] }]),
      ],
      ["filters not add", (t) => void (spec(t)["filters"] = [{ not: { exact: { type: APISERVER_TYPES[0] ?? "" } } }])],
      ["a CESQL filter", (t) => void (spec(t)["filters"] = [{ cesql: "type LIKE 'dev.knative.%'" }])],
      [
        "no filter to a subscriber URI",
        (t) => {
          delete spec(t)["filter"];
          spec(t)["subscriber"] = { uri: "http://member-greeter.default.svc.cluster.local" };
        },
      ],
    ];
    for (const [what, change] of loops) {
      const trigger = tampered(base, change);
      assert.equal(checkNoReplyLoop([...broker.objects, trigger], GREETER, GREETING_TYPE).length, 1, what);
    }
    const safe: ReadonlyArray<readonly [string, (t: JsonMap) => void]> = [
      ["filters exact add", (t) => void (spec(t)["filters"] = [{ exact: { type: APISERVER_TYPES[0] ?? "" } }])],
      ["filters not greeting", (t) => void (spec(t)["filters"] = [{ not: { exact: { type: GREETING_TYPE } } }])],
      ["filters prefix dev.knative.apiserver.", (t) => void (spec(t)["filters"] = [{ prefix: { type: "dev.knative.apiserver." } }])],
      [
        "no filter, to another service",
        (t) => {
          delete spec(t)["filter"];
          mapAt(t, "spec", "subscriber", "ref")["name"] = "greeting-display";
        },
      ],
    ];
    for (const [what, change] of safe) {
      assert.deepEqual(checkNoReplyLoop([tampered(base, change)], GREETER, GREETING_TYPE), [], what);
    }
  });
});

describe("the eventing-only overlay (Knative Eventing without Serving)", () => {
  let eventingOnly: KubeObject[] = [];
  before(async () => {
    eventingOnly = await kustomize(path.join(configDir, "overlays", "eventing-only"));
  });

  /** What the overlay's Deployment must run: the Knative Service's container, plus only what Serving would supply. */
  function expectedContainer(knativeService: KubeObject): JsonMap {
    const container = clone(containerOf(knativeService));
    mapAt(container, "livenessProbe", "httpGet")["port"] = "http1";
    mapAt(container, "readinessProbe", "httpGet")["port"] = "http1";
    const env = dig(container, "env");
    assert.ok(Array.isArray(env));
    const source = env.find((e) => isMap(e) && e["name"] === "GREETING_SOURCE");
    assert.ok(isMap(source));
    source["value"] = `/api/v1/namespaces/${NAMESPACE}/services/${GREETER}`;
    return container;
  }

  /** Differences between the overlay's Deployment and what the Knative Service says (empty: no drift). */
  function drift(knativeService: KubeObject, deployment: KubeObject): string[] {
    const problems: string[] = [];
    const pod = mapAt(deployment, "spec", "template", "spec");
    const containers = pod["containers"];
    if (!Array.isArray(containers) || containers.length !== 1) problems.push("the pod must have exactly one container");
    else if (JSON.stringify(containers[0]) !== JSON.stringify(expectedContainer(knativeService)))
      problems.push(`container differs: ${JSON.stringify(containers[0])}`);
    if (pod["serviceAccountName"] !== dig(knativeService, "spec", "template", "spec", "serviceAccountName")) problems.push("serviceAccountName differs");
    return problems;
  }

  it("renders config/ with the Knative Service replaced by a Deployment and a Service, nothing else added or removed", () => {
    const expected = inventory(direct.objects)
      .filter((i) => i !== `serving.knative.dev/Service/${GREETER}`)
      .concat([`apps/Deployment/${GREETER}`, `core/Service/${GREETER}`])
      .sort();
    assert.deepEqual(inventory(eventingOnly), expected);
    for (const object of direct.objects) {
      if (["Service", "ApiServerSource", "PingSource"].includes(object.kind)) continue;
      assert.deepEqual(find(eventingOnly, object.kind, nameOf(object), groupOf(object.apiVersion)), object, `${object.kind} ${nameOf(object)} unchanged`);
    }
  });

  it("the Deployment runs the Knative Service's container and ServiceAccount (probes' port and GREETING_SOURCE aside), and rejects drift", () => {
    const knativeService = find(direct.objects, "Service", GREETER, "serving.knative.dev");
    const deployment = find(eventingOnly, "Deployment", GREETER, "apps");
    assert.deepEqual(drift(knativeService, deployment), []);
    const pod = mapAt(deployment, "spec", "template", "spec");
    // Serving's grace period is the revision's timeoutSeconds, above SHUTDOWN_GRACE_MS.
    assert.equal(pod["terminationGracePeriodSeconds"], dig(knativeService, "spec", "template", "spec", "timeoutSeconds"));
    const labels = mapAt(deployment, "spec", "template", "metadata", "labels");
    assert.deepEqual(mapAt(deployment, "spec", "selector", "matchLabels"), labels);
    // Drift is caught: a weaker securityContext, another image, another ServiceAccount.
    for (const change of [
      (d: JsonMap) => void (mapAt(d, "spec", "template", "spec", "containers", 0, "securityContext")["readOnlyRootFilesystem"] = false),
      (d: JsonMap) => void (mapAt(d, "spec", "template", "spec", "containers", 0)["image"] = "ghcr.io/apimeister/member-greeter:latest"),
      (d: JsonMap) => void (mapAt(d, "spec", "template", "spec")["serviceAccountName"] = "default"),
    ]) {
      assert.equal(drift(knativeService, tampered(deployment, change)).length, 1);
    }
  });

  it("the Service selects the pod on port 80 to the function's port, and both sources deliver to it", () => {
    const deployment = find(eventingOnly, "Deployment", GREETER, "apps");
    const service = find(eventingOnly, "Service", GREETER, "");
    assert.deepEqual(mapAt(service, "spec", "selector"), mapAt(deployment, "spec", "template", "metadata", "labels"));
    assert.deepEqual(dig(service, "spec", "ports"), [{ name: "http", port: 80, targetPort: "http1" }]);
    for (const [kind, name] of [
      ["ApiServerSource", SOURCE],
      ["PingSource", "member-greeter-resync"],
    ] as const) {
      const source = find(eventingOnly, kind, name);
      assert.deepEqual(dig(source, "spec", "sink"), { ref: { apiVersion: "v1", kind: "Service", name: GREETER } });
      // Otherwise as in config/.
      const original = clone(find(direct.objects, kind, name));
      mapAt(original, "spec")["sink"] = mapAt(source, "spec", "sink");
      assert.deepEqual(source, original);
    }
  });

  it("every object validates: built-in ones against Kubernetes' schema, Knative ones against Knative's CRDs", async () => {
    for (const object of eventingOnly) {
      if (isBuiltinGroup(object.apiVersion)) assert.deepEqual(await validateBuiltin(object), [], `${object.kind} ${nameOf(object)}`);
      else if (groupOf(object.apiVersion).endsWith("knative.dev"))
        assert.deepEqual(knativeSchema(object).validate(object), [], `${object.kind} ${nameOf(object)}`);
    }
  });
});
