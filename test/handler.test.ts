import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CloudEventV1 } from "cloudevents";
import { createConverge } from "../functions/claim.ts";
import { HttpError, toHttpError } from "../functions/errors.ts";
import { RESYNC_TYPE } from "../functions/event-types.ts";
import { createHandler, GREETING_TYPE, type Claims, type MemberReader } from "../functions/handler.ts";
import { KubeError } from "../functions/kube-errors.ts";
import { parseMember, type JsonObject, type MemberRef } from "../functions/member.ts";
import { FAREWELL_FINALIZER, type Policy } from "../functions/next-step.ts";
import { createRecorder, eventName } from "../functions/recorder.ts";
import { createResync } from "../functions/resync.ts";
import { memberObject } from "./support/greeter-server.ts";
import { captureLogs, MemoryKube } from "./support/memory-kube.ts";

const NOW = new Date("2026-11-25T10:00:00Z");

function setup(options: { reader?: MemberReader; claims?: Claims; kube?: MemoryKube; policy?: Policy; timeoutMs?: number } = {}) {
  const { logger, logs } = captureLogs();
  let claims = options.claims;
  const kube = options.kube;
  if (kube !== undefined) {
    const api = async () => kube;
    const now = () => NOW;
    const policy = options.policy ?? { finalizer: false };
    const converge = createConverge({ api, policy, logger, now });
    claims = {
      converge,
      policy,
      recorder: createRecorder({ api, logger, now, sleep: async () => {}, quietMs: 0 }),
      resync: createResync({ api, namespace: async () => "default", converge, logger, memberTimeoutMs: 5_000 }),
    };
  }
  const handle = createHandler({
    source: "/member-greeter",
    logger,
    reader: options.reader,
    claims,
    newId: () => "reply-1",
    now: () => NOW,
    timeoutMs: options.timeoutMs ?? 5_000,
  });
  const settle = async () => claims?.recorder.settle();
  return { handle, logs, settle };
}

function event(type: string, data: unknown, extra: Record<string, unknown> = {}): CloudEventV1<unknown> {
  return { specversion: "1.0", id: "ev-1", source: "https://10.96.0.1:443", type, data, ...extra };
}

const R = "dev.knative.apiserver.resource.";
const REF = "dev.knative.apiserver.ref.";
const ref = { kind: "Member", namespace: "default", name: "patrick", apiVersion: "helloworld.apimeister.com/v1" };

/** The info line a greeting is said with. */
function said(text: string, reason: string, team: string | null, eventType: string, eventId = "ev-1") {
  return { level: "info", msg: text, member: "patrick", namespace: "default", team, reason, eventId, eventType };
}

function ignoredLine(reason: string, eventType: string, eventId = "ev-1") {
  return { level: "debug", msg: `ignored: ${reason}`, eventId, eventType };
}

const isStatus = (status: number, code?: string) => (err: unknown) =>
  toHttpError(err).status === status && (code === undefined || toHttpError(err).code === code);

describe("handler without a cluster: the event alone decides", () => {
  it("greets, logs the greeting with its fields, and replies with a greeting CloudEvent", async () => {
    const { handle, logs } = setup();
    const outcome = await handle(event(`${R}add`, memberObject("patrick", "blue")));
    assert.equal(outcome.kind, "greeted");
    assert.ok(outcome.kind === "greeted");
    assert.deepEqual(outcome.reply, {
      specversion: "1.0",
      id: "reply-1",
      source: "/member-greeter",
      type: GREETING_TYPE,
      subject: "/apis/helloworld.apimeister.com/v1/namespaces/default/members/patrick",
      time: "2026-11-25T10:00:00.000Z",
      datacontenttype: "application/json",
      data: { greeting: "welcome patrick to the team blue", reason: "welcome", member: { name: "patrick", namespace: "default", team: "blue" } },
    });
    assert.deepEqual(logs(), [said("welcome patrick to the team blue", "welcome", "blue", `${R}add`)]);
  });

  it("greets team changes on update and ignores updates that change no team, or a Member never greeted", async () => {
    const { handle, logs } = setup();
    const moved = await handle(event(`${R}update`, memberObject("patrick", "red", "blue")));
    assert.equal(moved.kind === "greeted" && moved.greeting.text, "patrick moved from the team blue to the team red");
    assert.equal(moved.kind === "greeted" && moved.reply.data?.reason, "team-change");
    assert.deepEqual(await handle(event(`${R}update`, memberObject("patrick", "red", "red"))), { kind: "ignored", reason: "no team change to greet" });
    assert.deepEqual(await handle(event(`${R}update`, memberObject("patrick", "red"))), { kind: "ignored", reason: "no team change to greet" });
    assert.deepEqual(logs(), [
      said("patrick moved from the team blue to the team red", "team-change", "red", `${R}update`),
      ignoredLine("no team change to greet", `${R}update`),
      ignoredLine("no team change to greet", `${R}update`),
    ]);
  });

  it("does not welcome a redelivered add whose object records a greeting", async () => {
    const { handle } = setup();
    assert.deepEqual(await handle(event(`${R}add`, memberObject("patrick", "blue", "blue"))), { kind: "ignored", reason: "no team change to greet" });
  });

  it("says farewell on delete", async () => {
    const { handle, logs } = setup();
    const out = await handle(event(`${R}delete`, memberObject("patrick", "red", "red")));
    assert.equal(out.kind === "greeted" && out.greeting.text, "sad to see you go patrick");
    assert.deepEqual(logs(), [said("sad to see you go patrick", "farewell", "red", `${R}delete`)]);
  });

  it("ignores other kinds and other event types, with one debug line each and nothing else", async () => {
    const { handle, logs } = setup();
    assert.deepEqual(await handle(event(`${R}add`, { kind: "Pod", metadata: { name: "p" } })), {
      kind: "ignored",
      reason: "not a helloworld.apimeister.com Member",
    });
    assert.deepEqual(await handle(event("com.example.other", "not even an object", { id: "ev-2" })), {
      kind: "ignored",
      reason: "event type com.example.other is not a Member change",
    });
    assert.deepEqual(logs(), [
      ignoredLine("not a helloworld.apimeister.com Member", `${R}add`),
      ignoredLine("event type com.example.other is not a Member change", "com.example.other", "ev-2"),
    ]);
  });

  it("ignores a resync tick: there is nothing to converge", async () => {
    const { handle, logs } = setup();
    assert.deepEqual(await handle(event(RESYNC_TYPE, undefined)), { kind: "ignored", reason: "resync needs a cluster where greetings are recorded" });
    assert.deepEqual(logs(), [ignoredLine("resync needs a cluster where greetings are recorded", RESYNC_TYPE)]);
  });

  it("uses the event's kind and namespace extensions when the data lacks them", async () => {
    const { handle } = setup();
    const out = await handle(event(`${R}add`, { metadata: { name: "patrick" } }, { kind: "Member", namespace: "blue-team" }));
    assert.equal(out.kind === "greeted" && out.greeting.member.namespace, "blue-team");
  });

  it("rejects data that is not a Member object with a 400, logging nothing", async () => {
    const { handle, logs } = setup();
    for (const data of [undefined, "x", [1], { kind: "Member", metadata: { name: "p", namespace: "d" }, spec: { memberOf: 1 } }]) {
      await assert.rejects(handle(event(`${R}add`, data)), (err: unknown) => err instanceof HttpError && err.status === 400);
    }
    assert.deepEqual(logs(), []);
  });
});

describe("handler without claims: Reference mode", () => {
  const reader = (objects: Record<string, JsonObject>, calls: [MemberRef, AbortSignal | undefined][] = []): MemberReader => ({
    async getMember(r, signal) {
      calls.push([r, signal]);
      return objects[`${r.namespace}/${r.name}`];
    },
  });

  it("reads the Member from the API server for add and update, within the event's budget", async () => {
    const calls: [MemberRef, AbortSignal | undefined][] = [];
    const { handle } = setup({ reader: reader({ "default/patrick": memberObject("patrick", "red", "blue") }, calls), timeoutMs: 20 });
    const add = await handle(event(`${REF}add`, ref));
    assert.deepEqual(add, { kind: "ignored", reason: "no team change to greet" }, "already greeted: status records a team");
    const update = await handle(event(`${REF}update`, ref));
    assert.equal(update.kind === "greeted" && update.greeting.text, "patrick moved from the team blue to the team red");
    assert.deepEqual(
      calls.map(([r]) => r),
      [
        { name: "patrick", namespace: "default" },
        { name: "patrick", namespace: "default" },
      ],
    );
    assert.deepEqual(
      calls.map(([, s]) => s?.aborted),
      [false, false],
    );
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(
      calls.map(([, s]) => s?.aborted),
      [false, false],
      "the budget ends with the event: no timer left to fire later",
    );
  });

  it("aborts a read that does not answer at the event's budget", async () => {
    const hanging: MemberReader = {
      getMember: (_r, signal) => new Promise((_resolve, reject) => signal?.addEventListener("abort", () => reject(signal.reason as Error), { once: true })),
    };
    const { handle } = setup({ reader: hanging, timeoutMs: 20 });
    const started = performance.now();
    await assert.rejects(handle(event(`${REF}add`, ref)), { name: "TimeoutError" });
    assert.ok(performance.now() - started >= 19, "not before the budget");
  });

  it("greets a delete from the reference alone, without the API server", async () => {
    const calls: [MemberRef, AbortSignal | undefined][] = [];
    const { handle } = setup({ reader: reader({}, calls) });
    const out = await handle(event(`${REF}delete`, ref));
    assert.equal(out.kind === "greeted" && out.greeting.text, "sad to see you go patrick");
    assert.equal(out.kind === "greeted" && out.greeting.member.team, null);
    assert.equal(calls.length, 0);
  });

  it("answers 2xx with no greeting and an info line when the Member is already gone", async () => {
    const { handle, logs } = setup({ reader: reader({}) });
    assert.deepEqual(await handle(event(`${REF}add`, ref)), { kind: "ignored", reason: "member no longer exists" });
    assert.deepEqual(logs(), [
      { level: "info", msg: "member no longer exists, nothing to greet", member: "patrick", namespace: "default", eventId: "ev-1", eventType: `${REF}add` },
    ]);
  });

  it("passes an unavailable API server through as a 503, and greets nothing", async () => {
    const failing: MemberReader = { getMember: () => Promise.reject(new KubeError("unavailable", "down")) };
    const { handle, logs } = setup({ reader: failing });
    await assert.rejects(handle(event(`${REF}add`, ref)), isStatus(503, "ERR_CLUSTER_UNAVAILABLE"));
    assert.deepEqual(logs(), []);
  });

  it("refuses Reference-mode add and update when no cluster is configured (500)", async () => {
    const { handle } = setup();
    for (const change of ["add", "update"]) {
      await assert.rejects(
        handle(event(`${REF}${change}`, ref)),
        (err: unknown) => err instanceof HttpError && err.code === "ERR_NO_CLUSTER" && err.status === 500,
      );
    }
  });
});

describe("handler with claims: claim, then say", () => {
  it("claims the welcome, then logs it, replies, and records the Event after the claim", async () => {
    const kube = new MemoryKube();
    const { handle, logs, settle } = setup({ kube });
    const start = kube.add("patrick", { team: "blue" });
    const out = await handle(event(`${R}add`, start));
    assert.equal(out.kind === "greeted" && out.reply.data?.greeting, "welcome patrick to the team blue");
    const greeting = out.kind === "greeted" ? out.greeting : undefined;
    assert.ok(greeting);
    // The claim names the Event it owes; the reply does not wait for it.
    const owed = eventName(greeting, parseMember(start), `uid-patrick-1/${NOW.toISOString()}`);
    assert.deepEqual(kube.status("patrick"), {
      team: "blue",
      greeting: "welcome patrick to the team blue",
      greetedAt: NOW.toISOString(),
      observedGeneration: 1,
      pendingEvent: { name: owed, reason: "Welcomed" },
    });
    const claimedVersion = kube.version("patrick");
    await settle();
    assert.deepEqual(
      kube.writes.map((w) => [w.op, w.resourceVersion, w.result]),
      [
        ["patchMemberStatus", parseMember(start).resourceVersion, "ok"],
        ["createEvent", undefined, "ok"],
        ["patchMemberStatus", claimedVersion, "ok"],
      ],
    );
    assert.deepEqual(
      kube.status("patrick"),
      { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: NOW.toISOString(), observedGeneration: 1 },
      "the Event exists: its mark is cleared",
    );
    assert.deepEqual(kube.events(), [
      {
        name: owed,
        member: { name: "patrick", namespace: "default", uid: "uid-patrick-1" },
        reason: "Welcomed",
        message: "welcome patrick to the team blue",
        time: NOW,
      },
    ]);
    assert.deepEqual(logs(), [said("welcome patrick to the team blue", "welcome", "blue", `${R}add`)]);
  });

  it("a redelivered add loses the claim: nothing said, no second Event", async () => {
    const kube = new MemoryKube();
    const { handle, logs, settle } = setup({ kube });
    const add = event(`${R}add`, kube.add("patrick", { team: "blue" }));
    assert.equal((await handle(add)).kind, "greeted");
    assert.deepEqual(await handle({ ...add, id: "ev-2" }), {
      kind: "ignored",
      reason: "nothing to greet: in step already, claimed by another delivery, or gone",
    });
    await settle();
    assert.equal(kube.events().length, 1);
    assert.deepEqual(
      logs().filter((l) => l.level !== "debug"),
      [said("welcome patrick to the team blue", "welcome", "blue", `${R}add`)],
    );
    assert.deepEqual(logs().at(-1), ignoredLine("nothing to greet: in step already, claimed by another delivery, or gone", `${R}add`, "ev-2"));
  });

  it("two deliveries at once: one greeting", async () => {
    const kube = new MemoryKube();
    const { handle, settle } = setup({ kube });
    const add = event(`${R}add`, kube.add("patrick", { team: "blue" }));
    const outs = await Promise.all([handle(add), handle({ ...add, id: "ev-2" })]);
    assert.deepEqual(outs.map((o) => o.kind).sort(), ["greeted", "ignored"]);
    await settle();
    assert.equal(kube.events().length, 1);
  });

  it("level-triggered: an update of a Member never greeted welcomes it; a team change is greeted once", async () => {
    const kube = new MemoryKube();
    const { handle } = setup({ kube });
    kube.add("patrick", { team: "blue" });
    const first = await handle(event(`${R}update`, kube.member("patrick")));
    assert.equal(first.kind === "greeted" && first.greeting.text, "welcome patrick to the team blue");
    const moved = event(`${R}update`, kube.setTeam("patrick", "red"));
    const second = await handle(moved);
    assert.equal(second.kind === "greeted" && second.greeting.text, "patrick moved from the team blue to the team red");
    assert.equal((await handle(moved)).kind, "ignored");
  });

  it("Reference-mode add and update read the Member through the claim", async () => {
    const kube = new MemoryKube();
    const { handle, settle } = setup({ kube });
    kube.add("patrick", { team: "blue" });
    const add = await handle(event(`${REF}add`, ref));
    assert.equal(add.kind === "greeted" && add.greeting.text, "welcome patrick to the team blue");
    assert.equal((await handle(event(`${REF}update`, ref))).kind, "ignored");
    await settle();
    // The update read the Member while its Event was still owed and wrote it too (one Event, by its name); the
    // recorder had cleared the mark meanwhile, so the update's clear lost, and it read the Member a third time.
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["patchMemberStatus:ok", "createEvent:ok", "patchMemberStatus:ok", "createEvent:ok", "patchMemberStatus:conflict"],
    );
    assert.equal(kube.calls.getMember, 3);
    assert.equal(kube.events().length, 1);
    assert.equal(kube.status("patrick")?.["pendingEvent"], undefined);
  });

  it("a Reference-mode add for a Member gone meanwhile: nothing to greet, a 2xx", async () => {
    const kube = new MemoryKube();
    const { handle, logs } = setup({ kube });
    assert.deepEqual(await handle(event(`${REF}add`, ref)), {
      kind: "ignored",
      reason: "nothing to greet: in step already, claimed by another delivery, or gone",
    });
    assert.deepEqual(
      logs().map((l) => [l.level, l.msg]),
      [
        ["info", "member no longer exists, nothing to greet"],
        ["debug", "ignored: nothing to greet: in step already, claimed by another delivery, or gone"],
      ],
    );
  });

  it("a claim that fails says nothing: the failure is a 503 for the sender to retry", async () => {
    const kube = new MemoryKube();
    const { handle, logs, settle } = setup({ kube });
    const add = event(`${R}add`, kube.add("patrick", { team: "blue" }));
    kube.failNext("patchMemberStatus", "unavailable");
    await assert.rejects(handle(add), isStatus(503, "ERR_CLUSTER_UNAVAILABLE"));
    await settle();
    assert.deepEqual(kube.events(), []);
    assert.deepEqual(logs(), []);
    assert.equal((await handle(add)).kind, "greeted", "the retry claims it");
  });

  it("a claim that keeps losing to other writers is a 503", async () => {
    const kube = new MemoryKube();
    const { handle, logs } = setup({ kube });
    const add = event(`${R}add`, kube.add("patrick", { team: "blue" }));
    kube.before("patchMemberStatus", (k) => void k.touch("patrick"), 100);
    await assert.rejects(handle(add), (err: unknown) => err instanceof KubeError && err.kind === "conflict" && isStatus(503, "ERR_CLUSTER_UNAVAILABLE")(err));
    assert.deepEqual(
      logs().filter((l) => l.level !== "debug"),
      [],
    );
  });

  it("does not wait for the Event: the reply comes while it is being written", async () => {
    const kube = new MemoryKube();
    const { handle, settle } = setup({ kube });
    let release = () => {};
    kube.before("createEvent", () => new Promise<void>((resolve) => (release = resolve)));
    const out = await handle(event(`${R}add`, kube.add("patrick", { team: "blue" })));
    assert.equal(out.kind, "greeted");
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(kube.events(), []);
    assert.equal(kube.calls.createEvent, 1, "the write has started");
    release();
    await settle();
    assert.equal(kube.events().length, 1);
  });

  it("an event for a Member whose Event a crash left owed: the Event is written once, the mark cleared, nothing said", async () => {
    const kube = new MemoryKube();
    const { handle, logs, settle } = setup({ kube });
    const status = { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: "2026-11-25T09:00:00.000Z", observedGeneration: 1 };
    const start = kube.add("patrick", { team: "blue", status: { ...status, pendingEvent: { name: "patrick.0123456789abcdef", reason: "Welcomed" } } });
    assert.deepEqual(await handle(event(`${R}update`, start)), {
      kind: "ignored",
      reason: "nothing to greet: in step already, claimed by another delivery, or gone",
    });
    await settle();
    assert.deepEqual(kube.events(), [
      {
        name: "patrick.0123456789abcdef",
        member: { name: "patrick", namespace: "default", uid: "uid-patrick-1" },
        reason: "Welcomed",
        message: "welcome patrick to the team blue",
        time: NOW,
      },
    ]);
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["createEvent:ok", "patchMemberStatus:ok"],
    );
    assert.deepEqual(kube.status("patrick"), status);
    assert.deepEqual(
      logs().filter((l) => l.level !== "debug"),
      [],
    );
  });

  it("hands the claim the event's budget", async () => {
    const signals: AbortSignal[] = [];
    let converge: Claims["converge"] = async (_start, signal) => void signals.push(signal);
    const claims: Claims = {
      converge: (start, signal, scope) => converge(start, signal, scope),
      policy: { finalizer: false },
      recorder: {
        record: () => assert.fail("nothing claimed, nothing recorded"),
        recordPending: () => assert.fail("nothing claimed, nothing recorded"),
        handles: () => false,
        settle: async () => {},
      },
      resync: () => assert.fail("no resync"),
    };
    const { handle } = setup({ claims, timeoutMs: 20 });
    assert.equal((await handle(event(`${R}add`, memberObject("patrick", "blue")))).kind, "ignored");
    assert.equal(signals[0]?.aborted, false);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(signals[0]?.aborted, false, "the budget ends with the event: no timer left to fire later");

    // A claim that does not finish is aborted at the budget.
    converge = (_start, signal) => new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true }));
    const started = performance.now();
    await assert.rejects(handle(event(`${R}add`, memberObject("patrick", "blue"))), { name: "TimeoutError" });
    assert.ok(performance.now() - started >= 19, "not before the budget");
  });
});

describe("handler with claims: farewells", () => {
  it("event mode: each delete event says farewell, recorded on the final object", async () => {
    const kube = new MemoryKube();
    const { handle, logs, settle } = setup({ kube });
    kube.add("patrick", { team: "red", status: { team: "red" } });
    const final = kube.delete("patrick");
    const del = event(`${R}delete`, final);
    const outs = [await handle(del), await handle({ ...del, id: "ev-2" })];
    assert.deepEqual(
      outs.map((o) => o.kind === "greeted" && o.greeting.text),
      ["sad to see you go patrick", "sad to see you go patrick"],
    );
    await settle();
    assert.deepEqual(logs(), [
      said("sad to see you go patrick", "farewell", "red", `${R}delete`),
      said("sad to see you go patrick", "farewell", "red", `${R}delete`, "ev-2"),
    ]);
    assert.deepEqual(
      kube.events().map((e) => [e.reason, e.member.uid]),
      [["SaidFarewell", "uid-patrick-1"]],
      "one Event for one final object",
    );
    assert.equal(kube.calls.patchMemberStatus, 0, "nothing to claim on");
  });

  it("event mode: a Reference-mode delete says farewell, team unknown", async () => {
    const kube = new MemoryKube();
    const { handle, settle } = setup({ kube });
    const out = await handle(event(`${REF}delete`, ref));
    assert.deepEqual(out.kind === "greeted" && out.greeting, {
      text: "sad to see you go patrick",
      reason: "farewell",
      member: { name: "patrick", namespace: "default", team: null },
    });
    await settle();
    assert.deepEqual(
      kube.events().map((e) => [e.reason, e.member]),
      [["SaidFarewell", { name: "patrick", namespace: "default", uid: undefined }]],
    );
  });

  it("event mode: the farewells of two Members of the same name, by reference, are two Events", async () => {
    const kube = new MemoryKube();
    const { handle, settle } = setup({ kube });
    kube.add("patrick", { team: "blue" });
    kube.delete("patrick");
    assert.equal((await handle(event(`${REF}delete`, ref, { id: "ev-1" }))).kind, "greeted");
    kube.add("patrick", { team: "red" });
    kube.delete("patrick");
    assert.equal((await handle(event(`${REF}delete`, ref, { id: "ev-2" }))).kind, "greeted");
    await settle();
    assert.equal(kube.events().length, 2);
  });

  it("finalizer mode: held for the farewell, said once by the update that sees the deletion, silent on the delete events", async () => {
    const kube = new MemoryKube();
    const policy = { finalizer: true };
    const { handle, logs, settle } = setup({ kube, policy });
    const add = await handle(event(`${R}add`, kube.add("patrick", { team: "blue" })));
    assert.equal(add.kind === "greeted" && add.greeting.text, "welcome patrick to the team blue");
    assert.deepEqual(parseMember(kube.member("patrick") ?? {}).finalizers, [FAREWELL_FINALIZER]);

    const held = kube.delete("patrick");
    const bye = await handle(event(`${R}update`, held, { id: "ev-2" }));
    assert.deepEqual(bye.kind === "greeted" && bye.greeting, {
      text: "sad to see you go patrick",
      reason: "farewell",
      member: { name: "patrick", namespace: "default", team: "blue" },
    });
    assert.equal(kube.member("patrick"), undefined, "let go");

    const final = kube.deleted[0];
    assert.deepEqual(await handle(event(`${R}delete`, final, { id: "ev-3" })), { kind: "ignored", reason: "farewell said already, before the Member went" });
    assert.deepEqual(await handle(event(`${REF}delete`, ref, { id: "ev-4" })), { kind: "ignored", reason: "farewell said already, before the Member went" });
    await settle();
    assert.deepEqual(
      kube.events().map((e) => e.reason),
      ["Welcomed", "SaidFarewell"],
    );
    assert.deepEqual(
      logs()
        .filter((l) => l.level === "info")
        .map((l) => [l.msg, l["eventId"]]),
      [
        ["welcome patrick to the team blue", "ev-1"],
        ["sad to see you go patrick", "ev-2"],
      ],
    );
  });

  it("finalizer mode: the farewell's Event is written once, by the convergence before the finalizer goes, with no warning", async () => {
    const kube = new MemoryKube();
    const { handle, logs, settle } = setup({ kube, policy: { finalizer: true } });
    kube.add("patrick", {
      team: "blue",
      finalizers: [FAREWELL_FINALIZER],
      status: { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: "2026-11-25T09:00:00.000Z" },
    });
    const held = kube.delete("patrick");
    const bye = await handle(event(`${R}update`, held, { id: "ev-2" }));
    assert.equal(bye.kind === "greeted" && bye.greeting.text, "sad to see you go patrick");
    await settle();
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["patchMemberStatus:ok", "createEvent:ok", "patchMemberStatus:ok", "patchMemberFinalizers:ok"],
    );
    assert.deepEqual(
      kube.events().map((e) => [e.reason, e.message]),
      [["SaidFarewell", "sad to see you go patrick"]],
    );
    assert.equal(kube.member("patrick"), undefined);
    assert.deepEqual(
      logs().filter((l) => l.level !== "debug"),
      [said("sad to see you go patrick", "farewell", "blue", `${R}update`, "ev-2")],
    );
  });

  it("finalizer mode: a Member that went without the finalizer still gets its farewell from the delete event", async () => {
    const kube = new MemoryKube();
    const { handle } = setup({ kube, policy: { finalizer: true } });
    kube.add("patrick", { team: "blue", status: { team: "blue" } });
    const out = await handle(event(`${R}delete`, kube.delete("patrick")));
    assert.equal(out.kind === "greeted" && out.greeting.text, "sad to see you go patrick");
  });
});

describe("handler with claims: resync on a PingSource tick", () => {
  it("converges every Member, saying each greeting under the tick's id", async () => {
    const kube = new MemoryKube();
    const { handle, logs, settle } = setup({ kube });
    kube.add("patrick", { team: "blue" });
    kube.add("nina", { team: "", status: { team: "" } });
    const out = await handle(event(RESYNC_TYPE, { message: "tick" }, { id: "tick-1" }));
    assert.deepEqual(out, { kind: "ignored", reason: "resync done" });
    await settle();
    assert.deepEqual(
      kube.events().map((e) => [e.member.name, e.reason]),
      [["patrick", "Welcomed"]],
    );
    const info = logs().filter((l) => l.level === "info");
    assert.deepEqual(info[0], said("welcome patrick to the team blue", "welcome", "blue", RESYNC_TYPE, "tick-1"));
    assert.deepEqual(
      info.map((l) => l.msg),
      ["welcome patrick to the team blue", "resync done"],
    );
  });

  it("a greeting claimed by the resync: its Event written once and its mark cleared after settle()", async () => {
    const kube = new MemoryKube();
    const { handle, settle } = setup({ kube });
    kube.add("patrick", { team: "blue" });
    await handle(event(RESYNC_TYPE, { message: "tick" }, { id: "tick-1" }));
    await settle();
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["patchMemberStatus:ok", "createEvent:ok", "patchMemberStatus:ok"],
    );
    assert.equal(kube.events().length, 1);
    assert.equal(kube.status("patrick")?.["pendingEvent"], undefined);
  });

  it("a resync over Members whose Events a crash left owed writes each owed Event exactly once and says nothing", async () => {
    const kube = new MemoryKube();
    const { handle, logs, settle } = setup({ kube });
    const owing = {
      anna: {
        team: "blue",
        greeting: "welcome anna to the team blue",
        greetedAt: "2026-11-25T09:00:00.000Z",
        pendingEvent: { name: "anna.0000000000000001", reason: "Welcomed" },
      },
      bert: {
        team: "red",
        greeting: "bert moved from the team blue to the team red",
        greetedAt: "2026-11-25T09:00:01.000Z",
        pendingEvent: { name: "bert.0000000000000002", reason: "TeamChanged" },
      },
      cleo: {
        team: "",
        greeting: "cleo left the team green",
        greetedAt: "2026-11-25T09:00:02.000Z",
        pendingEvent: { name: "cleo.0000000000000003", reason: "TeamChanged" },
      },
    };
    for (const [name, status] of Object.entries(owing)) kube.add(name, { team: status.team, status });
    kube.add("dora", { team: "blue", status: { team: "blue", greeting: "welcome dora to the team blue", greetedAt: "2026-11-25T08:00:00.000Z" } });
    assert.deepEqual(await handle(event(RESYNC_TYPE, { message: "tick" }, { id: "tick-1" })), { kind: "ignored", reason: "resync done" });
    await settle();
    assert.deepEqual(
      kube.events().map((e) => [e.name, e.member.name, e.member.uid, e.reason, e.message]),
      [
        ["anna.0000000000000001", "anna", "uid-anna-1", "Welcomed", "welcome anna to the team blue"],
        ["bert.0000000000000002", "bert", "uid-bert-2", "TeamChanged", "bert moved from the team blue to the team red"],
        ["cleo.0000000000000003", "cleo", "uid-cleo-3", "TeamChanged", "cleo left the team green"],
      ],
    );
    assert.equal(kube.calls.createEvent, 3, "each exactly once");
    for (const [name, { pendingEvent: _cleared, ...rest }] of Object.entries(owing)) assert.deepEqual(kube.status(name), rest, name);
    assert.deepEqual(
      logs()
        .filter((l) => l.level !== "debug")
        .map((l) => [l.level, l.msg, l["greeted"]]),
      [["info", "resync done", 0]],
    );
    // The next tick finds nothing owed.
    await handle(event(RESYNC_TYPE, { message: "tick" }, { id: "tick-2" }));
    await settle();
    assert.equal(kube.calls.createEvent, 3);
    assert.equal(kube.writes.length, 6);
  });

  it("a resync that could not converge every Member is a 503", async () => {
    const kube = new MemoryKube();
    const { handle } = setup({ kube });
    kube.add("patrick", { team: "blue" });
    kube.failNext("patchMemberStatus", "rejected");
    await assert.rejects(handle(event(RESYNC_TYPE, undefined)), isStatus(503, "ERR_CLUSTER_UNAVAILABLE"));
  });
});
