// The function's Kubernetes I/O, through the real Kubernetes client, against a
// local stand-in for the API server: only what a real kube-apiserver cannot
// easily be made to do on cue, i.e. answer one request with a transient 503.
//
// Everything else about API behaviour (Reference-mode reads, the status merge
// patch, Event fields, a 404 Member, a token without rights, an unreachable
// server) is checked against a real kube-apiserver in test/e2e/api.test.ts
// (`npm run test:e2e`).
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

describe("an API server that answers 503 once", () => {
  it("Reference-mode read → 503, so Knative retries; nothing greeted", async () => {
    api.members.set("default/patrick", memberObject("patrick", "blue"));
    api.failNext(1, 503);
    const before = greeter.logs().length;
    const { headers, body } = binaryEvent(`${REF}add`, ref("patrick"));
    const reply = await post(greeter.url, headers, body);
    assert.equal(reply.status, 503, reply.text);
    assert.match(reply.text, /ERR_CLUSTER_UNAVAILABLE/);
    assert.ok(
      !greeter
        .logs()
        .slice(before)
        .some((l) => l.level === "info"),
    );
    // The redelivery then works.
    const again = binaryEvent(`${REF}add`, ref("patrick"));
    assert.equal((await post(greeter.url, again.headers, again.body)).status, 200);
  });

  it("a status write that gets a 503 is retried, and lands", async () => {
    api.members.set("default/nina", memberObject("nina", "blue"));
    api.failNext(1, 503);
    const { headers, body } = binaryEvent(`${R}add`, memberObject("nina", "blue"));
    const reply = await post(greeter.url, headers, body);
    assert.equal(reply.status, 200, reply.text);
    const status = (api.members.get("default/nina")?.["status"] ?? {}) as Record<string, unknown>;
    assert.equal(status["team"], "blue");
    assert.equal(api.events.length, 1);
    const patches = api.requests.filter((r) => r.method === "PATCH").length;
    const posts = api.requests.filter((r) => r.method === "POST").length;
    assert.equal(patches + posts, 3, "one of the two writes was refused once and tried again");
    assert.ok(!greeter.logs().some((l) => l.level === "warn" && l["member"] === "nina"));
  });
});
