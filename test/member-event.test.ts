import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CloudEventV1 } from "cloudevents";
import { HttpError } from "../functions/errors.ts";
import { RESYNC_TYPE } from "../functions/event-types.ts";
import { greetingFromEvent, readMemberEvent } from "../functions/member-event.ts";
import { memberObject } from "./support/greeter-server.ts";
import { memberFixture } from "./support/memory-kube.ts";

function event(type: string, data: unknown, extra: Record<string, unknown> = {}): CloudEventV1<unknown> {
  return { specversion: "1.0", id: "ev-1", source: "https://10.96.0.1:443", type, data, ...extra };
}

const R = "dev.knative.apiserver.resource.";
const REF = "dev.knative.apiserver.ref.";
const ref = { kind: "Member", namespace: "default", name: "patrick", apiVersion: "helloworld.apimeister.com/v1" };

function invalidMember(message: RegExp) {
  return (err: unknown) => err instanceof HttpError && err.code === "ERR_INVALID_MEMBER" && err.status === 400 && message.test(err.message);
}

describe("member-event: what one CloudEvent says", () => {
  it("reads a PingSource tick as a resync, whatever its data", () => {
    assert.equal(RESYNC_TYPE, "dev.knative.sources.ping");
    assert.deepEqual(readMemberEvent(event(RESYNC_TYPE, undefined)), { kind: "resync" });
    assert.deepEqual(readMemberEvent(event(RESYNC_TYPE, "not an object")), { kind: "resync" });
  });

  it("says why an event of another type is not for it", () => {
    assert.deepEqual(readMemberEvent(event("com.example.other", "x")), { kind: "other", why: "event type com.example.other is not a Member change" });
  });

  it("reads the six ApiServerSource types by mode and change", () => {
    const full = memberObject("patrick", "blue");
    for (const change of ["add", "update", "delete"] as const) {
      const resource = readMemberEvent(event(`${R}${change}`, full));
      assert.equal(resource.kind, "member");
      assert.equal(resource.kind === "member" && resource.change, change);
      assert.deepEqual(readMemberEvent(event(`${REF}${change}`, ref)), { kind: "member-ref", change, ref: { name: "patrick", namespace: "default" } });
    }
  });

  it("parses the full Member of a Resource-mode event, status and deletion included", () => {
    const data = {
      ...memberObject("patrick", "red", "blue"),
      metadata: {
        name: "patrick",
        namespace: "default",
        uid: "u1",
        resourceVersion: "12",
        generation: 3,
        deletionTimestamp: "2026-11-25T10:00:00Z",
        finalizers: ["helloworld.apimeister.com/farewell"],
      },
      status: { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: "2026-11-25T09:00:00.000Z", farewellAt: "2026-11-25T10:00:01.000Z" },
    };
    assert.deepEqual(readMemberEvent(event(`${R}update`, data)), {
      kind: "member",
      change: "update",
      member: memberFixture({
        team: "red",
        recordedTeam: "blue",
        uid: "u1",
        resourceVersion: "12",
        generation: 3,
        deleting: true,
        finalizers: ["helloworld.apimeister.com/farewell"],
        farewellRecorded: true,
        recordedGreeting: "welcome patrick to the team blue",
        recordedAt: "2026-11-25T09:00:00.000Z",
      }),
    });
  });

  it("takes kind and namespace from the event's extensions when the data lacks them; an empty namespace is no hint", () => {
    const said = readMemberEvent(event(`${R}add`, { metadata: { name: "patrick" } }, { kind: "Member", namespace: "blue-team" }));
    assert.equal(said.kind === "member" && said.member.namespace, "blue-team");
    const byRef = readMemberEvent(event(`${REF}delete`, { name: "patrick" }, { kind: "Member", namespace: "blue-team" }));
    assert.deepEqual(byRef, { kind: "member-ref", change: "delete", ref: { name: "patrick", namespace: "blue-team" } });
    assert.throws(
      () => readMemberEvent(event(`${R}add`, { kind: "Member", metadata: { name: "p" } }, { namespace: "" })),
      invalidMember(/data\.metadata\.namespace is required/),
    );
    assert.throws(
      () => readMemberEvent(event(`${R}add`, { kind: "Member", metadata: { name: "p" } }, { namespace: 7 })),
      invalidMember(/data\.metadata\.namespace is required/),
    );
  });

  it("ignores other kinds and other API groups", () => {
    assert.deepEqual(readMemberEvent(event(`${R}add`, { kind: "Pod", metadata: { name: "p" } })), {
      kind: "other",
      why: "not a helloworld.apimeister.com Member",
    });
    assert.deepEqual(readMemberEvent(event(`${REF}add`, { ...ref, apiVersion: "other.example.com/v1" })), {
      kind: "other",
      why: "not a helloworld.apimeister.com Member",
    });
  });

  it("refuses data that is not an object where a Member is due, with a 400 naming what it got", () => {
    assert.throws(
      () => readMemberEvent(event(`${R}add`, undefined)),
      invalidMember(/^data must be a JSON object for dev\.knative\.apiserver\.resource\.add, got no data$/),
    );
    assert.throws(() => readMemberEvent(event(`${R}add`, "x")), invalidMember(/got string$/));
    assert.throws(() => readMemberEvent(event(`${REF}delete`, [ref])), invalidMember(/got array$/));
    assert.throws(() => readMemberEvent(event(`${R}add`, null)), invalidMember(/got null$/));
    assert.throws(() => readMemberEvent(event(`${R}add`, { metadata: { name: "p" } })), invalidMember(/kind is missing/));
    assert.throws(
      () => readMemberEvent(event(`${R}add`, { ...memberObject("p"), spec: { memberOf: 1 } })),
      invalidMember(/data\.spec\.memberOf must be a string, got number/),
    );
    assert.throws(() => readMemberEvent(event(`${REF}add`, { kind: "Member", namespace: "default" })), invalidMember(/data\.name is required/));
  });
});

describe("member-event: the event alone decides (no claims)", () => {
  it("greets a full Member by the change", () => {
    assert.equal(greetingFromEvent({ kind: "member", change: "add", member: memberFixture() })?.text, "welcome patrick to the team blue");
    assert.equal(greetingFromEvent({ kind: "member", change: "add", member: memberFixture({ recordedTeam: "blue" }) }), undefined);
    assert.equal(
      greetingFromEvent({ kind: "member", change: "update", member: memberFixture({ team: "red", recordedTeam: "blue" }) })?.text,
      "patrick moved from the team blue to the team red",
    );
    assert.equal(greetingFromEvent({ kind: "member", change: "update", member: memberFixture() }), undefined, "never greeted: an update says nothing");
    assert.deepEqual(greetingFromEvent({ kind: "member", change: "delete", member: memberFixture({ team: "red" }) }), {
      text: "sad to see you go patrick",
      reason: "farewell",
      member: { name: "patrick", namespace: "default", team: "red" },
    });
  });

  it("says farewell to a bare reference, team unknown", () => {
    assert.deepEqual(greetingFromEvent({ kind: "member-ref", change: "delete", ref: { name: "patrick", namespace: "ns1" } }), {
      text: "sad to see you go patrick",
      reason: "farewell",
      member: { name: "patrick", namespace: "ns1", team: null },
    });
  });

  it("refuses a Reference-mode add or update: it needs the object (500 ERR_NO_CLUSTER)", () => {
    for (const change of ["add", "update"] as const) {
      assert.throws(
        () => greetingFromEvent({ kind: "member-ref", change, ref: { name: "patrick", namespace: "default" } }),
        (err: unknown) => err instanceof HttpError && err.code === "ERR_NO_CLUSTER" && err.status === 500,
      );
    }
  });
});
