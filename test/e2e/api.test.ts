// The manifests, the RBAC and the function's Kubernetes I/O against a real
// kube-apiserver (RBAC on): what test/kubernetes.test.ts used to check against
// a local stand-in, now against the real thing. Events are POSTed to the
// function directly here; events.test.ts has Knative's adapter send them.
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { after, before, describe, it } from "node:test";
import { binaryEvent, post } from "../support/greeter-server.ts";
import { kustomize, nameOf, groupOf, type KubeObject } from "../support/kube.ts";
import { freePort, waitFor } from "./control-plane.ts";
import { brokerDir, finalizerDir, metricsDir, GREETER_SA, MEMBERS, NAMESPACE, rbacObjects, clusterForSuite, SOURCE_SA } from "./cluster.ts";
import { applyMember, events, field, getMember, waitForEvents, waitForStatusTeam, type Obj } from "./members.ts";
import { startGreeter, type GreeterProcess } from "./workloads.ts";
import { connectionsTo, sampleConnections } from "../../bench/cluster/sockets.ts";

const REF = "dev.knative.apiserver.ref.";
const RES = "dev.knative.apiserver.resource.";
const ref = (name: string) => ({ kind: "Member", namespace: NAMESPACE, name, apiVersion: "helloworld.apimeister.com/v1" });

const c = clusterForSuite({ dryRun: true });

/** `kind.group/name` as kubectl prints it. */
function kubectlName(object: KubeObject): string {
  const group = groupOf(object.apiVersion);
  return `${object.kind.toLowerCase()}${group === "" ? "" : `.${group}`}/${nameOf(object)}`;
}

function dryRunNames(stdout: string): string[] {
  return stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const m = /^(\S+) (created|configured|unchanged) \(server dry run\)$/.exec(line);
      assert.ok(m, `unexpected kubectl output: ${line}`);
      return m[1] ?? "";
    })
    .sort();
}

describe("config/ on a real API server", () => {
  it("the Member CRD and Knative's CRDs are Established", async () => {
    const { cp, crds } = c();
    assert.ok(crds.includes("members.helloworld.apimeister.com"));
    for (const name of [
      "apiserversources.sources.knative.dev",
      "brokers.eventing.knative.dev",
      "triggers.eventing.knative.dev",
      "services.serving.knative.dev",
    ]) {
      assert.ok(crds.includes(name), name);
    }
    for (const name of crds) {
      const crd = await cp.kubectlJson(["get", "crd", name]);
      const conditions = field(crd as Obj, "status", "conditions");
      assert.ok(Array.isArray(conditions) && conditions.some((x: Obj) => x["type"] === "Established" && x["status"] === "True"), name);
    }
  });

  it("kubectl apply --dry-run=server -k config passes for every object", () => {
    const { dryRuns, rendered } = c();
    assert.ok(dryRuns);
    assert.equal(dryRuns.config.code, 0, dryRuns.config.stderr);
    assert.equal(dryRuns.config.stderr, "");
    assert.deepEqual(dryRunNames(dryRuns.config.stdout), rendered.map(kubectlName).sort());
  });

  it("kubectl apply --dry-run=server -k config/overlays/broker passes for every object", async () => {
    const { dryRuns } = c();
    assert.ok(dryRuns);
    assert.equal(dryRuns.broker.code, 0, dryRuns.broker.stderr);
    assert.equal(dryRuns.broker.stderr, "");
    const objects = await kustomize(brokerDir);
    assert.deepEqual(dryRunNames(dryRuns.broker.stdout), objects.map(kubectlName).sort());
    assert.ok(objects.some((o) => o.kind === "Trigger") && objects.some((o) => o.kind === "Broker"));
  });

  for (const [which, dir] of [
    ["farewell-finalizer", finalizerDir],
    ["metrics", metricsDir],
  ] as const) {
    it(`kubectl apply --dry-run=server -k config/overlays/${which} passes for every object`, async () => {
      const { dryRuns } = c();
      assert.ok(dryRuns);
      const run = which === "metrics" ? dryRuns.metrics : dryRuns.finalizer;
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr, "");
      assert.deepEqual(dryRunNames(run.stdout), (await kustomize(dir)).map(kubectlName).sort());
    });
  }

  it("the RBAC objects on the server are those config/ renders", async () => {
    const { cp, rendered } = c();
    const rbac = rbacObjects(rendered);
    assert.deepEqual(rbac.map((o) => `${o.kind}/${nameOf(o)}`).sort(), [
      `Role/${GREETER_SA}`,
      `Role/${SOURCE_SA}`,
      `RoleBinding/${GREETER_SA}`,
      `RoleBinding/${SOURCE_SA}`,
      `ServiceAccount/${GREETER_SA}`,
      `ServiceAccount/${SOURCE_SA}`,
    ]);
    for (const object of rbac.filter((o) => o.kind !== "ServiceAccount")) {
      const live = (await cp.kubectlJson(["get", `${object.kind.toLowerCase()}.rbac.authorization.k8s.io`, nameOf(object), "-n", NAMESPACE])) as Obj;
      const key = object.kind === "Role" ? "rules" : "subjects";
      assert.deepEqual(live[key], object[key], `${object.kind} ${nameOf(object)}`);
      if (object.kind === "RoleBinding") assert.deepEqual(live["roleRef"], object["roleRef"]);
    }
  });

  it("a Member whose memberOf is not a string, or not a label value, is rejected by the API server", async () => {
    const { cp } = c();
    for (const [memberOf, message] of [
      [42, /spec\.memberOf: Invalid value: "integer": spec\.memberOf in body must be of type string/],
      [{ team: "blue" }, /spec\.memberOf: Invalid value: "object": spec\.memberOf in body must be of type string/],
      ["blue team", /spec\.memberOf in body should match/],
      ["x".repeat(64), /spec\.memberOf: Too long/],
    ] as const) {
      const result = await cp.kubectl(["apply", "--validate=false", "-f", "-"], {
        input: JSON.stringify({
          apiVersion: "helloworld.apimeister.com/v1",
          kind: "Member",
          metadata: { name: "invalid", namespace: NAMESPACE },
          spec: { memberOf },
        }),
      });
      assert.notEqual(result.code, 0, `${JSON.stringify(memberOf)} was accepted`);
      assert.match(result.stderr, message);
    }
    assert.equal(await getMember(cp, "invalid"), undefined);
  });
});

// ---------------------------------------------------------------------------

describe("RBAC: each ServiceAccount may do exactly what config/ grants", () => {
  const can = async (sa: string, verb: string, resource: string, extra: readonly string[] = []): Promise<boolean> => {
    const result = await c().cp.kubectl(["auth", "can-i", verb, resource, "-n", NAMESPACE, `--as=system:serviceaccount:${NAMESPACE}:${sa}`, ...extra]);
    assert.ok(result.code === 0 || result.code === 1, result.stderr);
    return result.code === 0;
  };

  const matrix: { sa: string; yes: [string, string, ...string[]][]; no: [string, string, ...string[]][] }[] = [
    {
      sa: SOURCE_SA,
      yes: [
        ["get", MEMBERS],
        ["list", MEMBERS],
        ["watch", MEMBERS],
      ],
      no: [
        ["create", MEMBERS],
        ["update", MEMBERS],
        ["patch", MEMBERS],
        ["delete", MEMBERS],
        ["deletecollection", MEMBERS],
        ["patch", MEMBERS, "--subresource=status"],
        ["update", MEMBERS, "--subresource=status"],
        ["get", MEMBERS, "--subresource=status"],
        ["create", "events"],
        ["get", "secrets"],
        ["list", "secrets"],
        ["get", "configmaps"],
        ["create", "pods"],
        ["create", "serviceaccounts/token"],
        ["get", "leases.coordination.k8s.io"],
        ["list", MEMBERS, "--namespace=kube-system"],
        ["watch", MEMBERS, "--all-namespaces"],
      ],
    },
    {
      sa: GREETER_SA,
      yes: [
        ["get", MEMBERS],
        ["list", MEMBERS],
        ["patch", MEMBERS, "--subresource=status"],
        ["create", "events.events.k8s.io"],
      ],
      no: [
        ["watch", MEMBERS],
        ["list", MEMBERS, "--namespace=kube-system"],
        ["create", MEMBERS],
        ["update", MEMBERS],
        ["patch", MEMBERS],
        ["delete", MEMBERS],
        ["update", MEMBERS, "--subresource=status"],
        ["get", MEMBERS, "--subresource=status"],
        ["get", "events"],
        ["list", "events"],
        ["patch", "events"],
        ["delete", "events"],
        ["create", "events"],
        ["get", "events.events.k8s.io"],
        ["get", "secrets"],
        ["list", "secrets"],
        ["get", "configmaps"],
        ["create", "pods"],
        ["create", "serviceaccounts/token"],
        ["get", MEMBERS, "--namespace=kube-system"],
        ["create", "events.events.k8s.io", "--namespace=kube-system"],
      ],
    },
  ];

  for (const { sa, yes, no } of matrix) {
    it(`${sa}: allowed ${yes.map((x) => x.join(" ")).join(", ")}`, async () => {
      for (const [verb, resource, ...extra] of yes)
        assert.equal(await can(sa, verb, resource, extra), true, `${sa} may ${verb} ${resource} ${extra.join(" ")}`);
    });
    it(`${sa}: denied everything else tried (${no.length} checks)`, async () => {
      for (const [verb, resource, ...extra] of no)
        assert.equal(await can(sa, verb, resource, extra), false, `${sa} may not ${verb} ${resource} ${extra.join(" ")}`);
    });
  }

  it("kubectl auth can-i --list: beyond what every authenticated identity gets, exactly the Roles of config/", async () => {
    const { cp } = c();
    await cp.serviceAccountKubeconfig("e2e-nobody", NAMESPACE);
    const rows = async (sa: string): Promise<Set<string>> => {
      const out = await cp.kubectlOk(["auth", "can-i", "--list", "-n", NAMESPACE, `--as=system:serviceaccount:${NAMESPACE}:${sa}`]);
      return new Set(
        out
          .split("\n")
          .slice(1)
          .filter((l) => l.trim() !== "")
          .map((l) => l.trim().replace(/\s+/g, " ")),
      );
    };
    const baseline = await rows("e2e-nobody");
    const extra = async (sa: string) => [...(await rows(sa))].filter((r) => !baseline.has(r)).sort();
    assert.deepEqual(await extra(SOURCE_SA), ["members.helloworld.apimeister.com [] [] [get list watch]"]);
    assert.deepEqual(await extra(GREETER_SA), [
      "events.events.k8s.io [] [] [create]",
      "members.helloworld.apimeister.com [] [] [get list]",
      "members.helloworld.apimeister.com/status [] [] [patch]",
    ]);
  });

  it("the TokenRequest tokens are those identities, and the API server enforces their limits", async () => {
    const { cp, greeterKubeconfig, sourceKubeconfig } = c();
    const whoami = async (kubeconfig: string) => (await cp.kubectlOk(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], { kubeconfig })).trim();
    assert.equal(await whoami(greeterKubeconfig), `system:serviceaccount:${NAMESPACE}:${GREETER_SA}`);
    assert.equal(await whoami(sourceKubeconfig), `system:serviceaccount:${NAMESPACE}:${SOURCE_SA}`);
    await applyMember(cp, "rbac-probe", "blue");
    const forbidden = async (kubeconfig: string, args: readonly string[]) => {
      const result = await cp.kubectl(args, { kubeconfig });
      assert.notEqual(result.code, 0, `${args.join(" ")} was allowed`);
      assert.match(result.stderr, /Forbidden|forbidden/, args.join(" "));
    };
    // The source lists and reads, nothing more.
    assert.match(await cp.kubectlOk(["get", MEMBERS, "-n", NAMESPACE, "-o", "name"], { kubeconfig: sourceKubeconfig }), /rbac-probe/);
    await forbidden(sourceKubeconfig, ["delete", MEMBERS, "rbac-probe", "-n", NAMESPACE]);
    await forbidden(sourceKubeconfig, ["get", "secrets", "-n", NAMESPACE]);
    // The greeter reads and lists Members of its namespace and writes their status; it cannot change the spec.
    assert.equal(
      (await cp.kubectlOk(["get", MEMBERS, "rbac-probe", "-n", NAMESPACE, "-o", "jsonpath={.spec.memberOf}"], { kubeconfig: greeterKubeconfig })).trim(),
      "blue",
    );
    // (kubectl patch would GET members/status first, which the greeter may not: the raw PATCH it makes.)
    const statusPath = `/apis/helloworld.apimeister.com/v1/namespaces/${NAMESPACE}/members/rbac-probe/status`;
    const patched = await cp.request(greeterKubeconfig, "PATCH", statusPath, {
      contentType: "application/merge-patch+json",
      text: '{"status":{"team":"blue"}}',
    });
    assert.equal(patched.status, 200, patched.body);
    assert.equal((await cp.request(greeterKubeconfig, "PUT", statusPath, { contentType: "application/json", text: patched.body })).status, 403);
    assert.equal(
      (await cp.request(sourceKubeconfig, "PATCH", statusPath, { contentType: "application/merge-patch+json", text: '{"status":{"team":"red"}}' })).status,
      403,
    );
    assert.match(await cp.kubectlOk(["get", MEMBERS, "-n", NAMESPACE, "-o", "name"], { kubeconfig: greeterKubeconfig }), /rbac-probe/);
    await forbidden(greeterKubeconfig, ["get", MEMBERS, "-n", "kube-system"]);
    await forbidden(greeterKubeconfig, ["patch", MEMBERS, "rbac-probe", "-n", NAMESPACE, "--type=merge", "-p", '{"spec":{"memberOf":"red"}}']);
    await forbidden(greeterKubeconfig, ["delete", MEMBERS, "rbac-probe", "-n", NAMESPACE]);
    await forbidden(greeterKubeconfig, ["get", "secrets", "-n", NAMESPACE]);
    await cp.kubectlOk(["delete", MEMBERS, "rbac-probe", "-n", NAMESPACE]);
  });
});

// ---------------------------------------------------------------------------

describe("the function (node .) against the real API server, events POSTed directly", () => {
  let greeter: GreeterProcess | undefined;
  before(async () => {
    greeter = await startGreeter(c().cp, "greeter-direct", { KUBECONFIG: c().greeterKubeconfig, KUBE_TIMEOUT_MS: "5000" });
  });
  after(async () => {
    await greeter?.stop();
  });
  const g = (): GreeterProcess => {
    if (greeter === undefined) throw new Error("the greeter did not start");
    return greeter;
  };

  it("Reference mode: reads the Member, greets it, merge-patches status, creates an Event", async () => {
    const { cp } = c();
    await applyMember(cp, "reader", "blue");
    const before = await getMember(cp, "reader");
    const uid = String(field(before, "metadata", "uid"));
    const started = Date.now();
    const add = binaryEvent(`${REF}add`, ref("reader"));
    const reply = await post(g().url, add.headers, add.body);
    assert.equal(reply.status, 200, reply.text);
    assert.deepEqual(reply.json(), {
      greeting: "welcome reader to the team blue",
      reason: "welcome",
      member: { name: "reader", namespace: NAMESPACE, team: "blue" },
    });

    // Status: written before the answer, through the status subresource, with the mark of the
    // Event it owes; the mark is cleared once the Event is written, after the reply.
    const claimed = field(await getMember(cp, "reader"), "status") as Obj;
    assert.deepEqual(
      Object.keys(claimed)
        .filter((k) => k !== "pendingEvent")
        .sort(),
      ["greetedAt", "greeting", "observedGeneration", "team"],
    );
    // Unless the Event was written and the mark cleared before this read.
    if (claimed["pendingEvent"] !== undefined) assert.equal(field(claimed, "pendingEvent", "reason"), "Welcomed");
    await waitForEvents(cp, `involvedObject.uid=${uid}`);
    const member = await waitFor(
      "the mark cleared",
      async () => {
        const now = await getMember(cp, "reader");
        return field(now, "status", "pendingEvent") === undefined ? now : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    const status = field(member, "status") as Obj;
    assert.deepEqual(Object.keys(status).sort(), ["greetedAt", "greeting", "observedGeneration", "team"]);
    assert.equal(status["team"], "blue");
    assert.equal(status["greeting"], "welcome reader to the team blue");
    assert.equal(status["observedGeneration"], 1);
    const greetedAt = Date.parse(String(status["greetedAt"]));
    assert.ok(greetedAt >= started - 1000 && greetedAt <= Date.now() + 1000, String(status["greetedAt"]));
    assert.deepEqual(field(member, "spec"), { memberOf: "blue" });
    assert.equal(field(member, "metadata", "generation"), 1, "a status write does not bump the generation");
    const managed = field(member, "metadata", "managedFields");
    assert.ok(Array.isArray(managed));
    const entry = managed.find((m: Obj) => m["manager"] === "member-greeter") as Obj | undefined;
    assert.ok(entry, JSON.stringify(managed));
    assert.equal(entry["operation"], "Update");
    assert.equal(entry["subresource"], "status");
    assert.deepEqual(
      Object.keys(field(entry, "fieldsV1", "f:status") as Obj)
        .filter((k) => k !== ".")
        .sort(),
      ["f:greetedAt", "f:greeting", "f:observedGeneration", "f:team"],
    );

    // The Event: one, about this Member.
    const [event, ...more] = await waitForEvents(cp, `involvedObject.uid=${uid}`);
    assert.equal(more.length, 0);
    assert.ok(event);
    assert.equal(event["reason"], "Welcomed");
    assert.equal(event["type"], "Normal");
    assert.equal(event["message"], "welcome reader to the team blue");
    assert.deepEqual(event["involvedObject"], { apiVersion: "helloworld.apimeister.com/v1", kind: "Member", name: "reader", namespace: NAMESPACE, uid });
    // Written through events.k8s.io/v1 (as client-go's own recorder does); the core view above is the same object.
    assert.equal(event["reportingComponent"], "member-greeter");
    assert.equal(event["reportingInstance"], hostname());
    assert.equal(event["action"], "Greet");
    assert.match(String(event["eventTime"]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.match(String(field(event, "metadata", "name")), /^reader\./);
    const modern = (await cp.kubectlJson(["get", "events.v1.events.k8s.io", String(field(event, "metadata", "name")), "-n", NAMESPACE])) as Obj;
    assert.equal(field(modern, "note"), "welcome reader to the team blue");
    assert.equal(field(modern, "reportingController"), "member-greeter");
    assert.deepEqual(field(modern, "regarding"), { apiVersion: "helloworld.apimeister.com/v1", kind: "Member", name: "reader", namespace: NAMESPACE, uid });
    // `kubectl describe` shows it, from the controller that reported it.
    assert.match(
      await cp.kubectlOk(["describe", MEMBERS, "reader", "-n", NAMESPACE]),
      /Normal\s+Welcomed\s+\S+\s+member-greeter\s+welcome reader to the team blue/,
    );
  });

  it("the update its own status write causes greets nothing (Reference and Resource mode)", async () => {
    const { cp } = c();
    const update = binaryEvent(`${REF}update`, ref("reader"));
    assert.equal((await post(g().url, update.headers, update.body)).status, 204);
    const written = await getMember(cp, "reader");
    const resource = binaryEvent(`${RES}update`, written);
    assert.equal((await post(g().url, resource.headers, resource.body)).status, 204);
    // A redelivered add is not welcomed twice either.
    const add = binaryEvent(`${REF}add`, ref("reader"));
    assert.equal((await post(g().url, add.headers, add.body)).status, 204);
    assert.equal((await events(cp, `involvedObject.name=reader`)).length, 1);
  });

  it("Reference mode, a Member that does not exist (404) → 204, no greeting, an info line", async () => {
    const mark = g().mark();
    const { headers, body } = binaryEvent(`${REF}update`, ref("ghost"));
    const reply = await post(g().url, headers, body);
    assert.equal(reply.status, 204, reply.text);
    const line = await g().waitForLog("member no longer exists, nothing to greet", mark, (l) => l["member"] === "ghost", 2_000);
    assert.equal(line.level, "info");
    assert.deepEqual(
      g()
        .linesSince(mark)
        .filter((l) => l.level === "warn" || l.level === "error"),
      [],
    );
  });

  it("Resource mode records too: status team and an Event from the event data alone", async () => {
    const { cp } = c();
    await applyMember(cp, "resource-mode");
    const object = await getMember(cp, "resource-mode");
    const add = binaryEvent(`${RES}add`, object);
    const reply = await post(g().url, add.headers, add.body);
    assert.equal(reply.status, 200, reply.text);
    assert.equal((reply.json() as { greeting: string }).greeting, "welcome resource-mode");
    await waitForStatusTeam(cp, "resource-mode", "");
    await waitForEvents(cp, `involvedObject.uid=${String(field(object, "metadata", "uid"))},reason=Welcomed`);
  });

  it("30 adds at once over TLS: every API call shares KUBE_MAX_CONNECTIONS kept-alive connections, none opened per call", async () => {
    const { cp } = c();
    const limit = 3;
    const pooled = await startGreeter(cp, "greeter-pooled", {
      KUBECONFIG: c().greeterKubeconfig,
      KUBE_TIMEOUT_MS: "5000",
      KUBE_MAX_CONNECTIONS: String(limit),
    });
    try {
      const port = Number(new URL(cp.url).port);
      const names = Array.from({ length: 30 }, (_, i) => `pooled-${i}`);
      for (const name of names) await applyMember(cp, name, "blue");
      const objects = await Promise.all(names.map((name) => getMember(cp, name)));
      const sampler = sampleConnections(pooled.proc.pid, port, 10);
      const replies = await Promise.all(
        objects.map((object) => {
          const add = binaryEvent(`${RES}add`, object);
          return post(pooled.url, add.headers, add.body);
        }),
      );
      assert.deepEqual(
        replies.map((r) => r.status),
        names.map(() => 200),
      );
      // The Events and the cleared marks are written after the replies.
      for (const name of names) await waitForEvents(cp, `involvedObject.name=${name},reason=Welcomed`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const { distinct, peak } = sampler.stop();
      const open = connectionsTo(pooled.proc.pid, port).length;
      // 30 claims, 30 Events and 30 cleared marks: one connection per call would be 90.
      assert.ok(peak <= limit && distinct <= limit, `peak ${peak}, distinct ${distinct} connections to the API server, limit ${limit}`);
      assert.ok(open >= 1 && open <= limit, `${open} connections kept open`);
    } finally {
      await pooled.stop();
    }
  });

  it("with a token that lacks the rights: the claim is refused, so nothing is said: 500 (not retried), the reason in the body", async () => {
    const { cp } = c();
    const kubeconfig = await cp.serviceAccountKubeconfig("e2e-no-rights", NAMESPACE);
    const powerless = await startGreeter(cp, "greeter-no-rights", { KUBECONFIG: kubeconfig, KUBE_TIMEOUT_MS: "5000" });
    try {
      await applyMember(cp, "unrecorded", "blue");
      const object = await getMember(cp, "unrecorded");
      const add = binaryEvent(`${RES}add`, object);
      const reply = await post(powerless.url, add.headers, add.body);
      assert.equal(reply.status, 500, reply.text);
      assert.match(reply.text, /ERR_CLUSTER_REJECTED/);
      assert.match(reply.text, /patch status of member default\/unrecorded: API server answered 403/);
      // Reference mode cannot even read the Member: refused the same way.
      const refAdd = binaryEvent(`${REF}add`, ref("unrecorded"));
      const refused = await post(powerless.url, refAdd.headers, refAdd.body);
      assert.equal(refused.status, 500, refused.text);
      assert.match(refused.text, /ERR_CLUSTER_REJECTED/);
      assert.match(refused.text, /get member default\/unrecorded: API server answered 403/);
      await powerless.stop();
      assert.deepEqual(
        powerless.lines().filter((l) => typeof l["reason"] === "string"),
        [],
        "nothing was greeted",
      );
      assert.equal(powerless.lines().filter((l) => l.level === "error" && /403/.test(l.msg)).length, 2);
      assert.equal(field(await getMember(cp, "unrecorded"), "status"), undefined);
      assert.deepEqual(await events(cp, "involvedObject.name=unrecorded"), []);
    } finally {
      await powerless.stop();
    }
  });

  it("an unreachable API server (a closed port): 503 so Knative retries, in both modes, and nothing is said", async () => {
    const { cp } = c();
    const closed = await freePort();
    const token = (await cp.kubectlOk(["create", "token", GREETER_SA, "-n", NAMESPACE, "--duration=1h"])).trim();
    const kubeconfig = await cp.writeKubeconfig("unreachable", token, `https://127.0.0.1:${closed}`);
    const cut = await startGreeter(cp, "greeter-unreachable", { KUBECONFIG: kubeconfig, KUBE_TIMEOUT_MS: "1000" });
    try {
      const refAdd = binaryEvent(`${REF}add`, ref("patrick"));
      const reply = await post(cut.url, refAdd.headers, refAdd.body);
      assert.equal(reply.status, 503, reply.text);
      assert.match(reply.text, /ERR_CLUSTER_UNAVAILABLE/);
      const object = {
        apiVersion: "helloworld.apimeister.com/v1",
        kind: "Member",
        metadata: { name: "patrick", namespace: NAMESPACE, uid: "u", generation: 1, resourceVersion: "12" },
        spec: { memberOf: "blue" },
      };
      const resAdd = binaryEvent(`${RES}add`, object);
      const claim = await post(cut.url, resAdd.headers, resAdd.body);
      assert.equal(claim.status, 503, claim.text);
      assert.match(claim.text, /patch status of member default\/patrick: API server unreachable; try again later/);
      await cut.stop();
      assert.deepEqual(
        cut.lines().filter((l) => typeof l["reason"] === "string"),
        [],
        "nothing was greeted",
      );
    } finally {
      await cut.stop();
    }
  });

  it("two deliveries of one add at once: one claim wins, one greeting, one Event; the other answers 204", async () => {
    const { cp } = c();
    await applyMember(cp, "twice", "green");
    const object = await getMember(cp, "twice");
    const add = binaryEvent(`${RES}add`, object);
    const replies = await Promise.all([post(g().url, add.headers, add.body), post(g().url, add.headers, add.body)]);
    assert.deepEqual(replies.map((r) => r.status).sort(), [200, 204]);
    await waitForEvents(cp, `involvedObject.name=twice,reason=Welcomed`);
    assert.equal((await events(cp, "involvedObject.name=twice")).length, 1);
    assert.equal(
      g()
        .lines()
        .filter((l) => l.msg === "welcome twice to the team green").length,
      1,
    );
  });

  it("a resync (the PingSource's event) welcomes a Member nobody told it about, once", async () => {
    const { cp } = c();
    await applyMember(cp, "unseen", "teal");
    const ping = binaryEvent("dev.knative.sources.ping", { resync: "members" });
    const mark = g().mark();
    const first = await post(g().url, { ...ping.headers, "ce-source": "/apis/v1/namespaces/default/pingsources/member-greeter-resync" }, ping.body);
    assert.equal(first.status, 204, first.text);
    const done = await g().waitForLog("resync done", mark);
    assert.equal(done["failed"], 0);
    assert.ok(Number(done["greeted"]) >= 1, JSON.stringify(done));
    assert.equal(
      g()
        .linesSince(mark)
        .filter((l) => l.msg === "welcome unseen to the team teal").length,
      1,
    );
    const again = g().mark();
    assert.equal((await post(g().url, ping.headers, ping.body)).status, 204);
    const second = await g().waitForLog("resync done", again);
    assert.equal(second["greeted"], 0, "everything is in step now");
    assert.equal(second["listed"], done["listed"]);
    await waitForStatusTeam(cp, "unseen", "teal");
  });
});
