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
  // Its connection opened ahead of the first event (GET /version): the test's calls and failures come after.
  // Its log line too, written once the answer is back: otherwise it can land among a test's lines.
  await api.preconnected();
  await greeter.logged("connected to the API server");
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

const greetings = (from: number) =>
  greeter
    .logs()
    .slice(from)
    .filter((l) => typeof l["reason"] === "string");
const errors = (from: number) =>
  greeter
    .logs()
    .slice(from)
    .filter((l) => l.level === "error")
    .map((l) => l["code"]);

/** Waits until `count` Events exist and the claim's mark (status.pendingEvent) is cleared: the recorder is done. */
async function eventsSettled(count: number, member: string): Promise<void> {
  const owed = (): unknown => (api.members.get(`default/${member}`)?.["status"] as Record<string, unknown> | undefined)?.["pendingEvent"];
  for (let i = 0; (api.events.length < count || owed() !== undefined) && i < 250; i++) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe("an API server that answers 503 once", () => {
  it("Reference-mode read → 503, so Knative retries; nothing greeted until the redelivery", async () => {
    api.members.set("default/patrick", memberObject("patrick", "blue"));
    api.failNext(1, 503);
    const before = greeter.logs().length;
    const { headers, body } = binaryEvent(`${REF}add`, ref("patrick"));
    const reply = await post(greeter.url, headers, body);
    assert.equal(reply.status, 503, reply.text);
    assert.match(reply.text, /ERR_CLUSTER_UNAVAILABLE/);
    assert.deepEqual(errors(before), ["ERR_CLUSTER_UNAVAILABLE"]);
    assert.deepEqual(greetings(before), []);
    // The redelivery then works, and greets once.
    const again = binaryEvent(`${REF}add`, ref("patrick"));
    assert.equal((await post(greeter.url, again.headers, again.body)).status, 200);
    assert.deepEqual(
      greetings(before).map((l) => l.msg),
      ["welcome patrick to the team blue"],
    );
    // Its Event is written after the reply: let it land before the next test injects failures.
    await eventsSettled(1, "patrick");
    assert.equal(api.events.length, 1);
  });

  it("a claim that gets a 503 says nothing and answers 503; the redelivery claims, greets once, writes one Event", async () => {
    api.members.set("default/nina", memberObject("nina", "blue"));
    api.failNext(1, 503);
    const before = greeter.logs().length;
    const { headers, body } = binaryEvent(`${R}add`, memberObject("nina", "blue"));
    const reply = await post(greeter.url, headers, body);
    assert.equal(reply.status, 503, reply.text);
    assert.deepEqual(greetings(before), []);
    assert.equal(api.members.get("default/nina")?.["status"], undefined);
    // The refused PATCH, then one GET to see whether it had landed after all.
    assert.deepEqual(
      api.requests.map((r) => r.method),
      ["PATCH", "GET"],
    );
    const again = await post(greeter.url, headers, body);
    assert.equal(again.status, 200, again.text);
    await eventsSettled(1, "nina");
    const status = (api.members.get("default/nina")?.["status"] ?? {}) as Record<string, unknown>;
    assert.equal(status["team"], "blue");
    assert.equal(api.events.length, 1);
    assert.deepEqual(
      greetings(before).map((l) => l.msg),
      ["welcome nina to the team blue"],
    );
    assert.deepEqual(
      greeter
        .logs()
        .slice(before)
        .filter((l) => l.level === "warn"),
      [],
    );
  });
});
