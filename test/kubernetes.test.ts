// Reference mode and recording, through the real Kubernetes client, against a
// local stand-in for the API server (the e2e suite uses the real one).
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.ts";
import { binaryEvent, memberObject, post, startGreeter, type TestGreeter } from "./support/greeter-server.ts";

const REF = "dev.knative.apiserver.ref.";
const R = "dev.knative.apiserver.resource.";
const ref = (name: string) => ({ kind: "Member", namespace: "default", name, apiVersion: "helloworld.apimeister.com/v1" });

let api: FakeApiServer;
let greeter: TestGreeter;
before(async () => {
  api = await startFakeApiServer();
  greeter = await startGreeter({ KUBECONFIG: api.kubeconfig, KUBE_TIMEOUT_MS: "2000" });
});
after(async () => {
  await greeter.stop();
  await api.close();
});
beforeEach(() => {
  api.members.clear();
  api.events.length = 0;
  api.requests.length = 0;
});

describe("Reference mode against the API server", () => {
  it("reads the Member, greets it, and records status and an Event", async () => {
    api.members.set("default/patrick", memberObject("patrick", "blue"));
    const { headers, body } = binaryEvent(`${REF}add`, ref("patrick"));
    const reply = await post(greeter.url, headers, body);
    assert.equal(reply.status, 200, reply.text);
    assert.equal((reply.json() as { greeting: string }).greeting, "welcome patrick to the team blue");

    const status = (api.members.get("default/patrick")?.["status"] ?? {}) as Record<string, unknown>;
    assert.equal(status["team"], "blue");
    assert.equal(status["greeting"], "welcome patrick to the team blue");
    assert.match(String(status["greetedAt"]), /^\d{4}-\d\d-\d\dT/);
    assert.equal(api.requests.find((r) => r.method === "PATCH")?.contentType, "application/merge-patch+json");

    assert.equal(api.events.length, 1);
    const event = api.events[0] as Record<string, Record<string, unknown> | string>;
    assert.equal(event["reason"], "Welcomed");
    assert.equal(event["type"], "Normal");
    assert.equal(event["message"], "welcome patrick to the team blue");
    assert.deepEqual(event["involvedObject"], { apiVersion: "helloworld.apimeister.com/v1", kind: "Member", name: "patrick", namespace: "default", uid: "uid-patrick" });
  });

  it("the update caused by its own status write greets nothing", async () => {
    api.members.set("default/patrick", memberObject("patrick", "blue"));
    const add = binaryEvent(`${REF}add`, ref("patrick"));
    assert.equal((await post(greeter.url, add.headers, add.body)).status, 200);
    const update = binaryEvent(`${REF}update`, ref("patrick"));
    assert.equal((await post(greeter.url, update.headers, update.body)).status, 204);
    // And Resource mode, with the object as the watch would send it after the write:
    const written = api.members.get("default/patrick");
    const resource = binaryEvent(`${R}update`, written);
    assert.equal((await post(greeter.url, resource.headers, resource.body)).status, 204);
  });

  it("a Member that is already gone → 204, no greeting, an info line", async () => {
    const { headers, body } = binaryEvent(`${REF}update`, ref("ghost"));
    const reply = await post(greeter.url, headers, body);
    assert.equal(reply.status, 204);
    assert.ok(greeter.logs().some((l) => l.level === "info" && l.msg === "member no longer exists, nothing to greet" && l["member"] === "ghost"));
  });

  it("an API server that answers 503 → 503, so Knative retries; nothing greeted", async () => {
    api.members.set("default/patrick", memberObject("patrick", "blue"));
    api.failNext(1, 503);
    const before = greeter.logs().length;
    const { headers, body } = binaryEvent(`${REF}add`, ref("patrick"));
    const reply = await post(greeter.url, headers, body);
    assert.equal(reply.status, 503, reply.text);
    assert.match(reply.text, /ERR_CLUSTER_UNAVAILABLE/);
    assert.ok(!greeter.logs().slice(before).some((l) => l.level === "info"));
  });

  it("Resource mode records too; a failing status write still greets with 200 and warns", async () => {
    api.members.set("default/nina", memberObject("nina"));
    api.failNext(10, 403);
    const { headers, body } = binaryEvent(`${R}add`, memberObject("nina"));
    const reply = await post(greeter.url, headers, body);
    assert.equal(reply.status, 200);
    assert.equal((reply.json() as { greeting: string }).greeting, "welcome nina");
    assert.ok(greeter.logs().some((l) => l.level === "warn" && l.msg.startsWith("recording the greeting failed") && l["member"] === "nina"));
  });
});

describe("an unreachable API server", () => {
  it("Reference-mode add → 503; a Resource-mode greeting still → 200", async () => {
    const down = await startFakeApiServer();
    const kubeconfig = down.kubeconfig;
    const url = down.url;
    await down.close(); // the port is now closed: connection refused
    const { writeFile, mkdtemp, rm } = await import("node:fs/promises");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = await mkdtemp(join(tmpdir(), "greeter-down-"));
    const file = join(dir, "kubeconfig");
    await writeFile(file, JSON.stringify({
      apiVersion: "v1", kind: "Config", "current-context": "c",
      clusters: [{ name: "c", cluster: { server: url, "insecure-skip-tls-verify": true } }], users: [{ name: "u", user: { token: "test-token" } }],
      contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
    }));
    void kubeconfig;
    const g = await startGreeter({ KUBECONFIG: file, KUBE_TIMEOUT_MS: "1000" });
    try {
      const refEvent = binaryEvent(`${REF}add`, ref("patrick"));
      const reply = await post(g.url, refEvent.headers, refEvent.body);
      assert.equal(reply.status, 503, reply.text);
      const resEvent = binaryEvent(`${R}add`, memberObject("patrick", "blue"));
      const greeted = await post(g.url, resEvent.headers, resEvent.body);
      assert.equal(greeted.status, 200);
      assert.ok(g.logs().some((l) => l.level === "warn" && l.msg.startsWith("recording the greeting failed")));
    } finally {
      await g.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
