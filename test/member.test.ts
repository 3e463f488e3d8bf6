import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HttpError } from "../functions/errors.ts";
import { isOurMember, memberPath, parseMember, parseMemberRef } from "../functions/member.ts";

function rejects(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof HttpError && err.status === 400 && message.test(err.message));
}

describe("Member parsing", () => {
  const base = { apiVersion: "helloworld.apimeister.com/v1", kind: "Member", metadata: { name: "patrick", namespace: "default" } };

  it("reads name, namespace, team, recorded team and identity", () => {
    const m = parseMember({
      ...base,
      metadata: { ...base.metadata, uid: "u1", resourceVersion: "9", generation: 3 },
      spec: { memberOf: "blue" },
      status: { team: "" },
    });
    assert.deepEqual(m, {
      name: "patrick",
      namespace: "default",
      team: "blue",
      recordedTeam: "",
      uid: "u1",
      resourceVersion: "9",
      generation: 3,
      deleting: false,
      finalizers: [],
      farewellRecorded: false,
      pendingEvent: undefined,
      recordedGreeting: undefined,
      recordedAt: undefined,
    });
  });

  it("reads deletion, finalizers and the greeting recorded in status", () => {
    const m = parseMember({
      ...base,
      metadata: { ...base.metadata, deletionTimestamp: "2026-11-25T10:00:00Z", finalizers: ["helloworld.apimeister.com/farewell", "example.com/other"] },
      status: { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: "2026-11-25T09:00:00.000Z", farewellAt: "2026-11-25T10:00:01.000Z" },
    });
    assert.deepEqual(
      [m.deleting, m.finalizers, m.farewellRecorded, m.recordedGreeting, m.recordedAt],
      [true, ["helloworld.apimeister.com/farewell", "example.com/other"], true, "welcome patrick to the team blue", "2026-11-25T09:00:00.000Z"],
    );
  });

  it("reads the Event a claim still owes (status.pendingEvent); missing or null is none", () => {
    const owed = { name: "patrick.0123456789abcdef", reason: "Welcomed" };
    assert.deepEqual(parseMember({ ...base, status: { team: "blue", pendingEvent: owed } }).pendingEvent, owed);
    assert.deepEqual(parseMember({ ...base, status: { pendingEvent: { ...owed, extra: 1 } } }).pendingEvent, owed, "only name and reason are kept");
    assert.equal(parseMember({ ...base, status: { team: "blue" } }).pendingEvent, undefined);
    assert.equal(parseMember({ ...base, status: { team: "blue", pendingEvent: null } }).pendingEvent, undefined);
    assert.equal(parseMember(base).pendingEvent, undefined);
  });

  it("rejects a pendingEvent without a name or a reason, or of the wrong type, with a 400", () => {
    const withOwed = (pendingEvent: unknown) => ({ ...base, status: { team: "blue", pendingEvent } });
    rejects(() => parseMember(withOwed({ name: "patrick.0123456789abcdef" })), /^data\.status\.pendingEvent needs a name and a reason$/);
    rejects(() => parseMember(withOwed({ reason: "Welcomed" })), /^data\.status\.pendingEvent needs a name and a reason$/);
    rejects(() => parseMember(withOwed({ name: "patrick.0123456789abcdef", reason: null })), /^data\.status\.pendingEvent needs a name and a reason$/);
    rejects(() => parseMember(withOwed({})), /^data\.status\.pendingEvent needs a name and a reason$/);
    rejects(() => parseMember(withOwed({ name: 7, reason: "Welcomed" })), /^data\.status\.pendingEvent\.name must be a string, got number$/);
    rejects(() => parseMember(withOwed({ name: "p.1", reason: ["Welcomed"] })), /^data\.status\.pendingEvent\.reason must be a string, got array$/);
    rejects(() => parseMember(withOwed("patrick.0123456789abcdef")), /^data\.status\.pendingEvent must be an object, got string$/);
  });

  it("treats missing and null deletion, finalizers and farewell as none", () => {
    const none = parseMember({
      ...base,
      metadata: { ...base.metadata, deletionTimestamp: null, finalizers: null },
      status: { team: "blue", farewellAt: null, greeting: null },
    });
    assert.deepEqual([none.deleting, none.finalizers, none.farewellRecorded, none.recordedGreeting, none.recordedAt], [false, [], false, undefined, undefined]);
    assert.deepEqual(parseMember({ ...base, metadata: { ...base.metadata, finalizers: [] } }).finalizers, []);
    assert.equal(parseMember(base).farewellRecorded, false);
  });

  it("rejects finalizers that are not an array of strings, and a deletionTimestamp or status field of the wrong type", () => {
    const withMeta = (extra: Record<string, unknown>) => ({ ...base, metadata: { ...base.metadata, ...extra } });
    rejects(
      () => parseMember(withMeta({ finalizers: "helloworld.apimeister.com/farewell" })),
      /^data\.metadata\.finalizers must be an array of strings, got string$/,
    );
    rejects(() => parseMember(withMeta({ finalizers: ["ok", 7] })), /^data\.metadata\.finalizers must be an array of strings, got array$/);
    rejects(() => parseMember(withMeta({ finalizers: [null] })), /data\.metadata\.finalizers must be an array of strings/);
    rejects(() => parseMember(withMeta({ finalizers: { a: "b" } })), /data\.metadata\.finalizers must be an array of strings, got object$/);
    rejects(() => parseMember(withMeta({ deletionTimestamp: 1 })), /data\.metadata\.deletionTimestamp must be a string, got number/);
    rejects(() => parseMember({ ...base, status: { farewellAt: true } }), /data\.status\.farewellAt must be a string, got boolean/);
    rejects(() => parseMember({ ...base, status: { greeting: 1 } }), /data\.status\.greeting must be a string, got number/);
    rejects(() => parseMember({ ...base, status: { greetedAt: {} } }), /data\.status\.greetedAt must be a string, got object/);
    rejects(() => parseMember({ ...base, status: "greeted" }), /data\.status must be an object, got string/);
  });

  it("treats a missing spec, missing memberOf and null as no team, and missing status as never greeted", () => {
    assert.equal(parseMember(base).team, "");
    assert.equal(parseMember({ ...base, spec: {} }).team, "");
    assert.equal(parseMember({ ...base, spec: { memberOf: null } }).team, "");
    assert.equal(parseMember(base).recordedTeam, undefined);
    assert.equal(parseMember({ ...base, status: {} }).recordedTeam, undefined);
  });

  it("takes the namespace from the event when the object has none", () => {
    assert.equal(parseMember({ ...base, metadata: { name: "patrick" } }, "team-ns").namespace, "team-ns");
  });

  it("rejects fields of the wrong type, saying which", () => {
    rejects(() => parseMember({ ...base, spec: { memberOf: 7 } }), /data\.spec\.memberOf must be a string, got number/);
    rejects(() => parseMember({ ...base, spec: "blue" }), /data\.spec must be an object, got string/);
    rejects(() => parseMember({ ...base, status: { team: ["blue"] } }), /data\.status\.team must be a string, got array/);
    rejects(() => parseMember({ ...base, metadata: { name: 1 } }), /data\.metadata\.name must be a string/);
    rejects(() => parseMember({ ...base, metadata: { name: "p", namespace: "d", generation: "1" } }), /generation must be an integer/);
    rejects(() => parseMember({ kind: "Member" }), /data\.metadata is required/);
  });

  it("rejects names and namespaces Kubernetes would not accept (they end up in API paths and logs)", () => {
    rejects(() => parseMember({ ...base, metadata: { name: "Patrick", namespace: "default" } }), /not a valid Kubernetes name/);
    rejects(() => parseMember({ ...base, metadata: { name: "a/../b", namespace: "default" } }), /not a valid Kubernetes name/);
    rejects(() => parseMember({ ...base, metadata: { name: "p\nINFO forged", namespace: "default" } }), /not a valid Kubernetes name/);
    rejects(() => parseMember({ ...base, metadata: { name: "p", namespace: "a.b" } }), /not a valid Kubernetes namespace/);
    rejects(() => parseMember({ ...base, metadata: { name: "", namespace: "default" } }), /data\.metadata\.name is required/);
    rejects(() => parseMember({ ...base, metadata: { name: "p" } }), /data\.metadata\.namespace is required/);
  });

  it("reads Reference-mode references", () => {
    assert.deepEqual(parseMemberRef({ kind: "Member", namespace: "default", name: "patrick", apiVersion: "helloworld.apimeister.com/v1" }), {
      name: "patrick",
      namespace: "default",
    });
    rejects(() => parseMemberRef({ kind: "Member", namespace: "default" }), /data\.name is required/);
  });

  it("recognises our Member kind and ignores others", () => {
    assert.equal(isOurMember(base, undefined), true);
    assert.equal(isOurMember({ metadata: {} }, "Member"), true);
    assert.equal(isOurMember({ ...base, kind: "Pod" }, undefined), false);
    assert.equal(isOurMember({ ...base, apiVersion: "other.example.com/v1" }, undefined), false);
    rejects(() => isOurMember({ metadata: {} }, undefined), /kind is missing/);
    rejects(() => isOurMember({ kind: 3 }, undefined), /data\.kind must be a string/);
  });

  it("builds the API path ApiServerSource uses as subject", () => {
    assert.equal(memberPath({ name: "patrick", namespace: "default" }), "/apis/helloworld.apimeister.com/v1/namespaces/default/members/patrick");
  });
});
