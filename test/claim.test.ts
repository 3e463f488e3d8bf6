import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createConverge, type Claimed } from "../functions/claim.ts";
import { KubeError } from "../functions/kube-errors.ts";
import { parseMember, type JsonObject, type Member } from "../functions/member.ts";
import { FAREWELL_FINALIZER, type Policy } from "../functions/next-step.ts";
import { createRecorder, eventName } from "../functions/recorder.ts";
import type { Greeting } from "../functions/greeting.ts";
import { captureLogs, MemoryKube } from "./support/memory-kube.ts";

const OTHER = "example.com/other";
const T0 = Date.parse("2026-11-25T10:00:00.000Z");

/** Each decision gets its own millisecond, as it would in real time. */
function clock() {
  let tick = 0;
  return () => new Date(T0 + tick++);
}
const at = (ms: number) => new Date(T0 + ms).toISOString();

function setup(options: { policy?: Policy; maxWrites?: number } = {}) {
  const kube = new MemoryKube();
  const { logger, logs } = captureLogs();
  const converge = createConverge({
    api: async () => kube,
    policy: options.policy ?? { finalizer: false },
    logger,
    now: clock(),
    ...(options.maxWrites === undefined ? {} : { maxWrites: options.maxWrites }),
  });
  const run = (start: Parameters<typeof converge>[0]) => converge(start, AbortSignal.timeout(5_000));
  const parsed = (object: JsonObject | undefined): Member => {
    assert.ok(object !== undefined, "the member exists");
    return parseMember(object);
  };
  const current = (name = "patrick") => parsed(kube.member(name));
  return { kube, logs, converge, run, parsed, current };
}

function kubeError(kind: KubeError["kind"], message?: RegExp) {
  return (err: unknown) => err instanceof KubeError && err.kind === kind && (message === undefined || message.test(err.message));
}

const welcomeBlue = { text: "welcome patrick to the team blue", reason: "welcome", member: { name: "patrick", namespace: "default", team: "blue" } } as const;
const movedBlueRed: Greeting = {
  text: "patrick moved from the team blue to the team red",
  reason: "team-change",
  member: { name: "patrick", namespace: "default", team: "red" },
};
const farewell: Greeting = { text: "sad to see you go patrick", reason: "farewell", member: { name: "patrick", namespace: "default", team: "blue" } };
const reasons = { welcome: "Welcomed", "team-change": "TeamChanged", farewell: "SaidFarewell" } as const;

/** status.pendingEvent as a claim of `greeting` decided at `time` writes it: the Event's name is unique to the claim (uid, time). */
function owed(greeting: Greeting, uid: string, time: string) {
  return {
    name: eventName(greeting, { name: greeting.member.name, namespace: greeting.member.namespace }, `${uid}/${time}`),
    reason: reasons[greeting.reason],
  };
}

describe("memory-kube: the API server where the greeter depends on it", () => {
  it("bumps resourceVersion on every write and refuses stale or missing preconditions", async () => {
    const kube = new MemoryKube();
    const v1 = parseMember(kube.add("patrick", { team: "blue" })).resourceVersion ?? "";
    const written = parseMember(await kube.patchMemberStatus({ name: "patrick", namespace: "default" }, v1, { team: "blue", greeting: "g", greetedAt: "t" }));
    assert.notEqual(written.resourceVersion, v1);
    assert.equal(written.resourceVersion, kube.version("patrick"));
    await assert.rejects(
      kube.patchMemberStatus({ name: "patrick", namespace: "default" }, v1, { team: "x", greeting: "g", greetedAt: "t" }),
      kubeError("conflict"),
    );
    await assert.rejects(kube.patchMemberFinalizers({ name: "nobody", namespace: "default" }, v1, []), kubeError("not-found"));
    assert.deepEqual(kube.status("patrick"), { team: "blue", greeting: "g", greetedAt: "t" });
    assert.deepEqual(
      kube.writes.map((w) => w.result),
      ["ok", "conflict", "not-found"],
    );
    assert.equal(kube.calls.patchMemberStatus, 2);
  });

  it("applies status writes as merge patches: null removes a field, objects merge, the rest replaces", async () => {
    const kube = new MemoryKube();
    const ref = { name: "patrick", namespace: "default" };
    const pendingEvent = { name: "patrick.0123456789abcdef", reason: "Welcomed" };
    const v1 = parseMember(kube.add("patrick", { status: { team: "blue", greeting: "g", greetedAt: "t", pendingEvent } })).resourceVersion ?? "";
    const v2 = parseMember(await kube.patchMemberStatus(ref, v1, { pendingEvent: null })).resourceVersion ?? "";
    assert.deepEqual(kube.status("patrick"), { team: "blue", greeting: "g", greetedAt: "t" }, "the key is gone, not null");
    assert.equal(parseMember(kube.member("patrick") ?? {}).pendingEvent, undefined);
    await kube.patchMemberStatus(ref, v2, { team: "red", greeting: "g2", greetedAt: "t2", pendingEvent });
    assert.deepEqual(kube.status("patrick"), { team: "red", greeting: "g2", greetedAt: "t2", pendingEvent });
    kube.writeStatus("patrick", { pendingEvent: { reason: "TeamChanged" }, greeting: null });
    assert.deepEqual(kube.status("patrick"), { team: "red", greetedAt: "t2", pendingEvent: { name: "patrick.0123456789abcdef", reason: "TeamChanged" } });
  });

  it("holds a deleted object with finalizers until the last one is removed, and refuses new ones meanwhile", async () => {
    const kube = new MemoryKube();
    kube.add("patrick", { finalizers: [FAREWELL_FINALIZER, OTHER] });
    const held = parseMember(kube.delete("patrick"));
    assert.equal(held.deleting, true);
    assert.equal(held.generation, 2);
    const ref = { name: "patrick", namespace: "default" };
    await assert.rejects(kube.patchMemberFinalizers(ref, held.resourceVersion ?? "", [FAREWELL_FINALIZER, OTHER, "new/one"]), kubeError("rejected"));
    const one = parseMember(await kube.patchMemberFinalizers(ref, held.resourceVersion ?? "", [OTHER]));
    assert.deepEqual(one.finalizers, [OTHER]);
    assert.ok(kube.member("patrick"));
    const last = parseMember(await kube.patchMemberFinalizers(ref, one.resourceVersion ?? "", []));
    assert.equal(kube.member("patrick"), undefined);
    assert.deepEqual(
      kube.deleted.map((o) => parseMember(o).resourceVersion),
      [last.resourceVersion],
    );
    kube.add("nina");
    kube.delete("nina");
    assert.equal(kube.member("nina"), undefined);
    assert.equal(kube.deleted.length, 2);
  });

  it("lists in pages with continue tokens, one namespace only", async () => {
    const kube = new MemoryKube();
    for (const name of ["e", "a", "d", "c", "b"]) kube.add(name);
    kube.add("z", { namespace: "elsewhere" });
    const one = await kube.listMembers("default", { limit: 2 });
    const two = await kube.listMembers("default", { limit: 2, continue: one.continue });
    const three = await kube.listMembers("default", { limit: 2, continue: two.continue });
    assert.deepEqual(
      [one, two, three].map((p) => p.items.map((i) => parseMember(i).name)),
      [["a", "b"], ["c", "d"], ["e"]],
    );
    assert.equal(three.continue, undefined);
    assert.equal((await kube.listMembers("default", { limit: 5 })).continue, undefined);
    await assert.rejects(kube.listMembers("elsewhere", { limit: 2, continue: one.continue }), kubeError("rejected"));
  });

  it("injects failures, lost answers and concurrent writers, counting every call", async () => {
    const kube = new MemoryKube();
    const v = parseMember(kube.add("patrick")).resourceVersion ?? "";
    const ref = { name: "patrick", namespace: "default" };
    const status = { team: "", greeting: "g", greetedAt: "t" };
    kube.failNext("patchMemberStatus", "unavailable", 2);
    await assert.rejects(kube.patchMemberStatus(ref, v, status), kubeError("unavailable"));
    await assert.rejects(kube.patchMemberStatus(ref, v, status), kubeError("unavailable"));
    assert.equal(kube.status("patrick"), undefined, "an injected failure writes nothing");
    kube.loseAnswer("patchMemberStatus");
    await assert.rejects(kube.patchMemberStatus(ref, v, status), kubeError("unavailable"));
    assert.deepEqual(kube.status("patrick"), status, "a lost answer was written");
    kube.before("patchMemberFinalizers", (k, r) => void k.touch(r.name));
    await assert.rejects(kube.patchMemberFinalizers(ref, kube.version("patrick") ?? "", ["x/y"]), kubeError("conflict"));
    assert.deepEqual(parseMember(await kube.patchMemberFinalizers(ref, kube.version("patrick") ?? "", ["x/y"])).finalizers, ["x/y"], "a hook runs once");
    const event = { name: "patrick.1", member: { ...ref, uid: "u" }, reason: "Welcomed", message: "g", time: new Date(T0) };
    kube.loseAnswer("createEvent");
    await assert.rejects(kube.createEvent(event), kubeError("unavailable"));
    await kube.createEvent(event);
    assert.equal(kube.events().length, 1, "Events are idempotent by name");
    assert.deepEqual(kube.calls, { getMember: 0, listMembers: 0, patchMemberStatus: 3, patchMemberFinalizers: 2, createEvent: 2 });
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      [
        "patchMemberStatus:injected",
        "patchMemberStatus:injected",
        "patchMemberStatus:answer-lost",
        "patchMemberFinalizers:conflict",
        "patchMemberFinalizers:ok",
        "createEvent:answer-lost",
        "createEvent:ok",
      ],
    );
  });
});

describe("claim: a greeting is said only once its status write succeeded", () => {
  it("claims a welcome with a write conditional on the version decided from, and records it in status", async () => {
    const { kube, run, parsed, current } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    const claimed = await run(start);
    assert.deepEqual(claimed?.greeting, welcomeBlue);
    assert.deepEqual(kube.status("patrick"), {
      team: "blue",
      greeting: "welcome patrick to the team blue",
      greetedAt: at(0),
      observedGeneration: 1,
      pendingEvent: owed(welcomeBlue, "uid-patrick-1", at(0)),
    });
    assert.match(owed(welcomeBlue, "uid-patrick-1", at(0)).name, /^patrick\.[0-9a-f]{16}$/);
    assert.deepEqual(claimed?.member, current(), "the Member as the claim wrote it");
    assert.deepEqual(kube.writes, [{ op: "patchMemberStatus", name: "patrick", resourceVersion: start.resourceVersion, result: "ok" }]);
    assert.deepEqual(kube.events(), [], "the Event is the recorder's, off the reply path");
    assert.equal(kube.calls.getMember, 0, "the event's copy names its version: no read");
  });

  it("claims a welcome once: a redelivery of the same event loses, reads again, and says nothing", async () => {
    const { kube, run, parsed, logs } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    assert.ok(await run(start));
    const written = kube.version("patrick");
    assert.equal(await run(start), undefined);
    // No recorder here: the loser finds the winner's Event still owed, and writes it (by the owed name) instead of a greeting.
    assert.deepEqual(
      kube.writes.map((w) => [w.op, w.resourceVersion, w.result]),
      [
        ["patchMemberStatus", start.resourceVersion, "ok"],
        ["patchMemberStatus", start.resourceVersion, "conflict"],
        ["createEvent", undefined, "ok"],
        ["patchMemberStatus", written, "ok"],
      ],
    );
    assert.equal(kube.calls.getMember, 1);
    assert.deepEqual(
      kube.status("patrick"),
      { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: at(0), observedGeneration: 1 },
      "no second claim",
    );
    assert.deepEqual(
      kube.events().map((e) => [e.name, e.reason, e.message]),
      [[owed(welcomeBlue, "uid-patrick-1", at(0)).name, "Welcomed", "welcome patrick to the team blue"]],
    );
    assert.deepEqual(logs(), [
      { level: "debug", msg: "member changed meanwhile: reading it again", member: "patrick", namespace: "default", step: "claim" },
      { level: "debug", msg: "owed Event written", member: "patrick", namespace: "default", event: owed(welcomeBlue, "uid-patrick-1", at(0)).name },
    ]);
  });

  it("two concurrent convergences of the same stale object: exactly one claims", async () => {
    const { kube, run, parsed } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    const results = await Promise.all([run(start), run(start), run(start)]);
    assert.deepEqual(
      results.filter((r) => r !== undefined).map((r) => r.greeting),
      [welcomeBlue],
    );
    const claimedAt = kube.status("patrick")?.["greetedAt"];
    assert.equal(typeof claimedAt, "string");
    const mark = owed(welcomeBlue, "uid-patrick-1", String(claimedAt));
    // The two losers find the winner's Event owed (no recorder here): both create it, by its name, and one of them clears the mark.
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      [
        "patchMemberStatus:ok",
        "patchMemberStatus:conflict",
        "patchMemberStatus:conflict",
        "createEvent:ok",
        "createEvent:ok",
        "patchMemberStatus:ok",
        "patchMemberStatus:conflict",
      ],
    );
    assert.equal(
      kube.writes.filter((w) => w.op === "patchMemberStatus" && w.resourceVersion === start.resourceVersion).length,
      3,
      "each claim from the version decided from",
    );
    assert.deepEqual(
      kube.events().map((e) => e.name),
      [mark.name],
    );
    assert.equal(kube.status("patrick")?.["pendingEvent"], undefined);
  });

  it("reads a reference (or a copy without version) first", async () => {
    const { kube, run, parsed } = setup();
    kube.add("patrick", { team: "blue" });
    assert.deepEqual((await run({ name: "patrick", namespace: "default" }))?.greeting, welcomeBlue);
    assert.equal(kube.calls.getMember, 1);
    kube.add("nina", { team: "" });
    const copy = { ...parsed(kube.member("nina")), resourceVersion: undefined };
    assert.equal((await run(copy))?.greeting.text, "welcome nina");
    assert.equal(kube.calls.getMember, 2);
  });

  it("a Member that is gone: nothing to greet, from a reference or from a stale copy", async () => {
    const { kube, run, parsed, logs } = setup();
    const stale = parsed(kube.add("patrick", { team: "blue" }));
    kube.delete("patrick");
    assert.equal(await run({ name: "patrick", namespace: "default" }), undefined);
    assert.equal(kube.calls.patchMemberStatus, 0);
    assert.deepEqual(logs(), [{ level: "info", msg: "member no longer exists, nothing to greet", member: "patrick", namespace: "default" }]);
    assert.equal(await run(stale), undefined, "not-found on the claim");
    assert.deepEqual(
      kube.writes.map((w) => w.result),
      ["not-found"],
    );
    assert.equal(logs().length, 1);
  });

  it("records the generation the decision saw, and the team now for a team change", async () => {
    const { kube, run, current } = setup();
    kube.add("patrick", { team: "blue", status: { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: at(-5) } });
    kube.setTeam("patrick", "green");
    kube.setTeam("patrick", "red");
    const claimed = await run(current());
    assert.equal(claimed?.greeting.text, "patrick moved from the team blue to the team red");
    assert.deepEqual(kube.status("patrick"), {
      team: "red",
      greeting: "patrick moved from the team blue to the team red",
      greetedAt: at(0),
      observedGeneration: 3,
      pendingEvent: owed(movedBlueRed, "uid-patrick-1", at(0)),
    });
  });

  it("in step: no write at all", async () => {
    const { kube, run, current } = setup();
    kube.add("patrick", { team: "blue", status: { team: "blue" } });
    assert.equal(await run(current()), undefined);
    assert.deepEqual(kube.writes, []);
  });
});

describe("claim: conflicts are decided again, never retried blindly", () => {
  it("a conflict from an unrelated change: reads again and claims with the new version", async () => {
    const { kube, run, parsed } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    let touched: string | undefined;
    kube.before("patchMemberStatus", (k) => void (touched = parseMember(k.touch("patrick")).resourceVersion));
    assert.deepEqual((await run(start))?.greeting, welcomeBlue);
    assert.deepEqual(
      kube.writes.map((w) => [w.resourceVersion, w.result]),
      [
        [start.resourceVersion, "conflict"],
        [touched, "ok"],
      ],
    );
    assert.equal(kube.calls.getMember, 1);
    assert.equal(kube.status("patrick")?.["greetedAt"], at(1), "decided again, at the time of the second decision");
  });

  it("the Member read again needs another greeting: that one is claimed", async () => {
    const { kube, run, parsed } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    // Meanwhile another delivery welcomed patrick into blue, and then he moved to red.
    kube.before("patchMemberStatus", (k) => {
      k.writeStatus("patrick", { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: at(-1) });
      k.setTeam("patrick", "red");
    });
    const claimed = await run(start);
    assert.deepEqual(claimed?.greeting, {
      text: "patrick moved from the team blue to the team red",
      reason: "team-change",
      member: { name: "patrick", namespace: "default", team: "red" },
    });
    assert.deepEqual(kube.status("patrick"), {
      team: "red",
      greeting: "patrick moved from the team blue to the team red",
      greetedAt: at(1),
      observedGeneration: 2,
      pendingEvent: owed(movedBlueRed, "uid-patrick-1", at(1)),
    });
    assert.deepEqual(
      kube.writes.map((w) => w.result),
      ["conflict", "ok"],
    );
  });

  it("the Member read again is gone: nothing", async () => {
    const { kube, run, parsed } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.before("patchMemberStatus", (k) => void k.delete("patrick"));
    assert.equal(await run(start), undefined);
    assert.deepEqual(
      kube.writes.map((w) => w.result),
      ["not-found"],
    );
  });

  it("gives up after maxWrites with a conflict (→ 503), having written nothing", async () => {
    const { kube, run, parsed } = setup({ maxWrites: 3 });
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.before("patchMemberStatus", (k) => void k.touch("patrick"), 100);
    await assert.rejects(run(start), kubeError("conflict", /^member default\/patrick kept changing: 3 writes without converging$/));
    assert.equal(kube.calls.patchMemberStatus, 3);
    assert.equal(kube.calls.getMember, 3);
    assert.equal(kube.status("patrick"), undefined);
  });

  it("makes five writes by default before it gives up", async () => {
    const { kube, run, parsed } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.before("patchMemberStatus", (k) => void k.touch("patrick"), 100);
    await assert.rejects(run(start), kubeError("conflict", /5 writes without converging/));
    assert.equal(kube.calls.patchMemberStatus, 5);
  });

  it("wins on the last write it may make", async () => {
    const { kube, run, parsed } = setup({ maxWrites: 3 });
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.before("patchMemberStatus", (k) => void k.touch("patrick"), 2);
    assert.deepEqual((await run(start))?.greeting, welcomeBlue);
    assert.deepEqual(
      kube.writes.map((w) => w.result),
      ["conflict", "conflict", "ok"],
    );
  });

  it("passes other failures through, with nothing said", async () => {
    const { kube, run, parsed } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.failNext("patchMemberStatus", "rejected");
    await assert.rejects(run(start), kubeError("rejected"));
    kube.before("patchMemberStatus", (k) => void k.touch("patrick"));
    kube.failNext("getMember", "unavailable");
    await assert.rejects(run(start), kubeError("unavailable"), "the read after a conflict failed");
    assert.equal(kube.status("patrick"), undefined);
  });

  it("an aborted signal stops it before any write", async () => {
    const { kube, converge, parsed } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    await assert.rejects(converge(start, AbortSignal.abort()), kubeError("unavailable"));
    assert.equal(kube.status("patrick"), undefined);
  });
});

describe("claim: a claim whose answer was lost is checked with one fresh read", () => {
  it("written after all: it is ours, and says so", async () => {
    const { kube, run, parsed, logs, current } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.loseAnswer("patchMemberStatus");
    const claimed = await run(start);
    assert.deepEqual(claimed?.greeting, welcomeBlue);
    assert.deepEqual(claimed?.member, current());
    assert.equal(kube.calls.getMember, 1);
    assert.equal(kube.calls.patchMemberStatus, 1, "not written twice");
    assert.deepEqual(logs(), [{ level: "info", msg: "the claim's answer was lost, but the claim was written", member: "patrick", namespace: "default" }]);
  });

  it("not written: the failure stands (→ 503) and nothing is said", async () => {
    const { kube, run, parsed } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.failNext("patchMemberStatus", "unavailable");
    await assert.rejects(run(start), kubeError("unavailable", /injected unavailable for patchMemberStatus/));
    assert.equal(kube.calls.getMember, 1);
    assert.equal(kube.status("patrick"), undefined);
  });

  it("the same greeting written by someone else at another time is not ours", async () => {
    const { kube, run, parsed } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.writeStatus("patrick", { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: at(-1) });
    kube.failNext("patchMemberStatus", "unavailable");
    await assert.rejects(run(start), kubeError("unavailable"));
    assert.equal(kube.calls.getMember, 1);
  });

  it("the check itself fails: the original failure stands", async () => {
    const { kube, run, parsed } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.loseAnswer("patchMemberStatus");
    kube.failNext("getMember", "unavailable");
    await assert.rejects(run(start), kubeError("unavailable", /answer lost/));
    assert.equal(kube.status("patrick")?.["greeting"], "welcome patrick to the team blue", "written, but not known to be: a redelivery finds it in step");
  });

  it("the check finds the Member changed since: still one greeting per convergence", async () => {
    const { kube, run, parsed } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.loseAnswer("patchMemberStatus");
    kube.before("getMember", (k) => void k.setTeam("patrick", "red"));
    const claimed = await run(start);
    assert.deepEqual(claimed?.greeting, welcomeBlue);
    assert.equal(claimed?.member.team, "red");
    assert.equal(kube.calls.patchMemberStatus, 1, "the team change is for a later convergence");
  });
});

describe("claim: FAREWELLS=finalizer", () => {
  const policy = { finalizer: true };

  it("adds the finalizer before the welcome", async () => {
    const { kube, run, parsed, current } = setup({ policy });
    const start = parsed(kube.add("patrick", { team: "blue", finalizers: [OTHER] }));
    const claimed = await run(start);
    assert.deepEqual(claimed?.greeting, welcomeBlue);
    assert.deepEqual(
      kube.writes.map((w) => [w.op, w.result]),
      [
        ["patchMemberFinalizers", "ok"],
        ["patchMemberStatus", "ok"],
      ],
    );
    assert.equal(kube.writes[0]?.resourceVersion, start.resourceVersion);
    assert.deepEqual(current().finalizers, [OTHER, FAREWELL_FINALIZER]);
    assert.equal(current().recordedGreeting, "welcome patrick to the team blue");
  });

  it("says no welcome when the finalizer cannot be added", async () => {
    const { kube, run, parsed } = setup({ policy });
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.failNext("patchMemberFinalizers", "rejected");
    await assert.rejects(run(start), kubeError("rejected"));
    assert.equal(kube.calls.patchMemberStatus, 0);
    assert.equal(kube.status("patrick"), undefined);
  });

  it("a conflict on the finalizer: reads again, adds it to what is there now", async () => {
    const { kube, run, parsed, current } = setup({ policy });
    const start = parsed(kube.add("patrick", { team: "blue" }));
    kube.before("patchMemberFinalizers", (k) => void k.touch("patrick"));
    assert.ok(await run(start));
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["patchMemberFinalizers:conflict", "patchMemberFinalizers:ok", "patchMemberStatus:ok"],
    );
    assert.deepEqual(current().finalizers, [FAREWELL_FINALIZER]);
  });

  it("claims the farewell of a Member held in deletion, then lets it go", async () => {
    const { kube, run, parsed } = setup({ policy });
    kube.add("patrick", {
      team: "blue",
      finalizers: [FAREWELL_FINALIZER],
      status: { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: at(-9) },
    });
    const held = parsed(kube.delete("patrick"));
    const claimed = await run(held);
    assert.deepEqual(claimed?.greeting, {
      text: "sad to see you go patrick",
      reason: "farewell",
      member: { name: "patrick", namespace: "default", team: "blue" },
    });
    assert.equal(claimed?.member.farewellRecorded, true);
    assert.equal(claimed?.member.pendingEvent, undefined, "the Member as the convergence left it: the farewell's Event written, its mark cleared");
    assert.equal(kube.member("patrick"), undefined, "the last finalizer went: so did the Member");
    // The farewell's Event is written, and its mark cleared, before the finalizer goes.
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["patchMemberStatus:ok", "createEvent:ok", "patchMemberStatus:ok", "patchMemberFinalizers:ok"],
    );
    assert.deepEqual(kube.events(), [
      {
        name: owed(farewell, "uid-patrick-1", at(0)).name,
        member: { name: "patrick", namespace: "default", uid: "uid-patrick-1" },
        reason: "SaidFarewell",
        message: "sad to see you go patrick",
        time: new Date(at(1)),
      },
    ]);
    const final = parsed(kube.deleted[0]);
    assert.deepEqual(kube.deleted[0]?.["status"], {
      team: "blue",
      greeting: "sad to see you go patrick",
      greetedAt: at(0),
      farewellAt: at(0),
      observedGeneration: 2,
    });
    assert.deepEqual(final.finalizers, []);
    assert.equal(await run(held), undefined, "a redelivery finds it gone");
  });

  it("records the farewell under the team last greeted into, and keeps others' finalizers", async () => {
    const { kube, run, parsed, current } = setup({ policy });
    kube.add("patrick", { team: "red", finalizers: [OTHER, FAREWELL_FINALIZER], status: { team: "blue" } });
    assert.equal((await run(parsed(kube.delete("patrick"))))?.greeting.member.team, "red");
    assert.equal(kube.status("patrick")?.["team"], "blue");
    assert.deepEqual(current().finalizers, [OTHER]);
    assert.equal(current().deleting, true);
  });

  it("farewell recorded already: only lets it go, saying nothing", async () => {
    const { kube, run, parsed } = setup({ policy });
    kube.add("patrick", { finalizers: [FAREWELL_FINALIZER], status: { team: "", farewellAt: at(-1) } });
    assert.equal(await run(parsed(kube.delete("patrick"))), undefined);
    assert.equal(kube.member("patrick"), undefined);
    assert.equal(kube.calls.patchMemberStatus, 0);
  });

  it("a failure after the farewell is claimed is logged, and the farewell still said", async () => {
    const { kube, run, parsed, logs } = setup({ policy });
    kube.add("patrick", { finalizers: [FAREWELL_FINALIZER], status: { team: "" } });
    kube.failNext("patchMemberFinalizers", "unavailable");
    const claimed = await run(parsed(kube.delete("patrick")));
    assert.equal(claimed?.greeting.text, "sad to see you go patrick");
    assert.ok(kube.member("patrick"), "held until a later event or resync lets it go");
    assert.deepEqual(logs(), [
      { level: "debug", msg: "owed Event written", member: "patrick", namespace: "default", event: owed(farewell, "uid-patrick-1", at(0)).name },
      {
        level: "warn",
        msg: "after the greeting, set-finalizers failed: injected unavailable for patchMemberFinalizers",
        member: "patrick",
        namespace: "default",
      },
    ]);
  });

  it("a failed read after a conflict on the release, once the farewell is claimed: logged, farewell said", async () => {
    const { kube, run, parsed, logs } = setup({ policy });
    kube.add("patrick", { finalizers: [FAREWELL_FINALIZER], status: { team: "" } });
    kube.before("patchMemberFinalizers", (k) => void k.touch("patrick"));
    kube.failNext("getMember", "unavailable");
    const claimed = await run(parsed(kube.delete("patrick")));
    assert.equal(claimed?.greeting.reason, "farewell");
    assert.deepEqual(
      logs()
        .filter((l) => l.level === "warn")
        .map((l) => l.msg),
      ["after the greeting, set-finalizers failed: injected unavailable for getMember"],
    );
  });

  it("a lost answer on the release counts as a failure after the claim: farewell said", async () => {
    const { kube, run, parsed } = setup({ policy });
    kube.add("patrick", { finalizers: [FAREWELL_FINALIZER], status: { team: "" } });
    kube.loseAnswer("patchMemberFinalizers");
    assert.equal((await run(parsed(kube.delete("patrick"))))?.greeting.reason, "farewell");
    assert.equal(kube.member("patrick"), undefined);
  });

  it("running out of writes after the farewell is claimed: logged, farewell still said", async () => {
    const { kube, run, parsed, logs } = setup({ policy, maxWrites: 1 });
    kube.add("patrick", { finalizers: [FAREWELL_FINALIZER], status: { team: "" } });
    let claimed: Claimed | undefined;
    try {
      claimed = await run(parsed(kube.delete("patrick")));
    } finally {
      assert.equal(kube.status("patrick")?.["farewellAt"], at(0), "the farewell was claimed");
    }
    assert.equal(claimed?.greeting.reason, "farewell");
    assert.equal(logs().filter((l) => l.level === "warn").length, 1);
  });

  it("event mode still lets go of a Member held by our finalizer", async () => {
    const { kube, run, parsed } = setup({ policy: { finalizer: false } });
    kube.add("patrick", { finalizers: [FAREWELL_FINALIZER], status: { team: "" } });
    assert.equal((await run(parsed(kube.delete("patrick"))))?.greeting.reason, "farewell");
    assert.equal(kube.member("patrick"), undefined);
  });
});

describe("claim: the Event a claim owes (status.pendingEvent)", () => {
  const owedWelcome = { name: "patrick.0123456789abcdef", reason: "Welcomed" };
  /** A Member greeted into blue whose Event a crash left owed. */
  const crashed = { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: at(-9), observedGeneration: 1, pendingEvent: owedWelcome };

  it("after its own claim on a live Member it stops: the mark is left for the recorder", async () => {
    const { kube, run, parsed, current, logs } = setup();
    const start = parsed(kube.add("patrick", { team: "blue" }));
    const claimed = await run(start);
    assert.deepEqual(claimed?.greeting, welcomeBlue);
    assert.deepEqual(claimed?.member.pendingEvent, owed(welcomeBlue, "uid-patrick-1", at(0)));
    assert.deepEqual(current().pendingEvent, owed(welcomeBlue, "uid-patrick-1", at(0)));
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["patchMemberStatus:ok"],
    );
    assert.equal(kube.calls.createEvent, 0);
    assert.deepEqual(logs(), []);
  });

  it("finalizer mode, live: finalizer, claim, then it stops with the mark left", async () => {
    const { kube, run, parsed, current } = setup({ policy: { finalizer: true } });
    const claimed = await run(parsed(kube.add("patrick", { team: "blue" })));
    assert.deepEqual(claimed?.greeting, welcomeBlue);
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["patchMemberFinalizers:ok", "patchMemberStatus:ok"],
    );
    assert.deepEqual(current().pendingEvent, owed(welcomeBlue, "uid-patrick-1", at(0)));
    assert.deepEqual(kube.events(), []);
  });

  it("a Member found with a mark (a crash before its Event): the Event is written, named and worded from status, the mark cleared, nothing said", async () => {
    const { kube, run, current, logs } = setup();
    kube.add("patrick", { team: "blue", status: crashed });
    const version = kube.version("patrick");
    assert.equal(await run(current()), undefined);
    assert.deepEqual(kube.events(), [
      {
        name: "patrick.0123456789abcdef",
        member: { name: "patrick", namespace: "default", uid: "uid-patrick-1" },
        reason: "Welcomed",
        message: "welcome patrick to the team blue",
        time: new Date(at(0)),
      },
    ]);
    assert.deepEqual(kube.writes, [
      { op: "createEvent", name: "patrick.0123456789abcdef", resourceVersion: undefined, result: "ok" },
      { op: "patchMemberStatus", name: "patrick", resourceVersion: version, result: "ok" },
    ]);
    const { pendingEvent: _cleared, ...rest } = crashed;
    assert.deepEqual(kube.status("patrick"), rest);
    assert.deepEqual(logs(), [{ level: "debug", msg: "owed Event written", member: "patrick", namespace: "default", event: "patrick.0123456789abcdef" }]);
  });

  it("a mark whose Event is refused again (no RBAC for events): given up with one warning, and the team change is still claimed", async () => {
    const { kube, run, current, logs } = setup();
    kube.add("patrick", { team: "blue", status: crashed });
    kube.setTeam("patrick", "red");
    kube.failNext("createEvent", "rejected");
    const claimed = await run(current());
    assert.deepEqual(claimed?.greeting, movedBlueRed);
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.name}:${w.result}`),
      ["createEvent:patrick.0123456789abcdef:injected", "patchMemberStatus:patrick:ok", "patchMemberStatus:patrick:ok"],
    );
    assert.deepEqual(kube.events(), []);
    assert.deepEqual(
      logs()
        .filter((l) => l.level === "warn")
        .map((l) => l.msg),
      ["the Event this greeting owes was refused again, and is given up: injected rejected for createEvent"],
    );
  });

  it("finalizer mode: a Member held in deletion with an Event still owed gets that Event before its farewell is claimed", async () => {
    const { kube, run, parsed } = setup({ policy: { finalizer: true } });
    kube.add("patrick", { team: "blue", finalizers: [FAREWELL_FINALIZER], status: crashed });
    const claimed = await run(parsed(kube.delete("patrick")));
    assert.equal(claimed?.greeting.reason, "farewell");
    assert.deepEqual(
      kube.events().map((e) => e.reason),
      ["Welcomed", "SaidFarewell"],
      "the owed welcome's Event, then the farewell's, before the finalizer went",
    );
    assert.equal(kube.member("patrick"), undefined);
  });

  it("a mark and a team change: the owed Event first, then the new claim, whose own Event is left to the recorder", async () => {
    const { kube, run, current } = setup();
    kube.add("patrick", { team: "blue", status: crashed });
    kube.setTeam("patrick", "red");
    const claimed = await run(current());
    assert.deepEqual(claimed?.greeting, movedBlueRed);
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.name}:${w.result}`),
      ["createEvent:patrick.0123456789abcdef:ok", "patchMemberStatus:patrick:ok", "patchMemberStatus:patrick:ok"],
    );
    assert.deepEqual(
      kube.events().map((e) => [e.name, e.reason, e.message]),
      [["patrick.0123456789abcdef", "Welcomed", "welcome patrick to the team blue"]],
    );
    assert.deepEqual(kube.status("patrick"), {
      team: "red",
      greeting: "patrick moved from the team blue to the team red",
      greetedAt: at(1),
      observedGeneration: 2,
      pendingEvent: owed(movedBlueRed, "uid-patrick-1", at(1)),
    });
  });

  it("a conflict while clearing the mark: reads again and decides again (the mark cleared meanwhile: nothing more)", async () => {
    const { kube, run, current, logs } = setup();
    kube.add("patrick", { team: "blue", status: crashed });
    const version = kube.version("patrick");
    // Meanwhile the recorder of the greeter that claimed it wrote the Event and cleared the mark.
    kube.before("patchMemberStatus", (k) => void k.writeStatus("patrick", { pendingEvent: null }));
    assert.equal(await run(current()), undefined);
    assert.deepEqual(
      kube.writes.map((w) => [w.op, w.resourceVersion, w.result]),
      [
        ["createEvent", undefined, "ok"],
        ["patchMemberStatus", version, "conflict"],
      ],
    );
    assert.equal(kube.calls.getMember, 1);
    assert.equal(kube.events().length, 1);
    assert.equal(kube.status("patrick")?.["pendingEvent"], undefined);
    assert.deepEqual(
      logs().map((l) => [l.msg, l["step"]]),
      [["member changed meanwhile: reading it again", "record-event"]],
    );
  });

  it("a conflict while clearing the mark: the mark still there is cleared under the new version, one Event", async () => {
    const { kube, run, current } = setup();
    kube.add("patrick", { team: "blue", status: crashed });
    const version = kube.version("patrick");
    let touched: string | undefined;
    kube.before("patchMemberStatus", (k) => void (touched = parseMember(k.touch("patrick")).resourceVersion));
    assert.equal(await run(current()), undefined);
    assert.deepEqual(
      kube.writes.map((w) => [w.op, w.resourceVersion, w.result]),
      [
        ["createEvent", undefined, "ok"],
        ["patchMemberStatus", version, "conflict"],
        ["createEvent", undefined, "ok"],
        ["patchMemberStatus", touched, "ok"],
      ],
    );
    assert.equal(kube.calls.getMember, 1);
    assert.equal(kube.events().length, 1, "the second create finds it there");
    assert.equal(kube.status("patrick")?.["pendingEvent"], undefined);
  });

  it("the farewell path: an Event that cannot be written now holds the Member, mark and finalizer, until a later convergence writes it and lets go", async () => {
    const { kube, run, parsed, current, logs } = setup({ policy: { finalizer: true } });
    kube.add("patrick", {
      team: "blue",
      finalizers: [FAREWELL_FINALIZER],
      status: { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: at(-9) },
    });
    kube.failNext("createEvent", "unavailable");
    const claimed = await run(parsed(kube.delete("patrick")));
    assert.deepEqual(claimed?.greeting, farewell);
    const mark = owed(farewell, "uid-patrick-1", at(0));
    assert.deepEqual(current().pendingEvent, mark);
    assert.deepEqual(current().finalizers, [FAREWELL_FINALIZER], "not let go while its Event is owed");
    assert.deepEqual(kube.events(), []);
    assert.deepEqual(logs(), [
      { level: "warn", msg: "after the greeting, record-event failed: injected unavailable for createEvent", member: "patrick", namespace: "default" },
    ]);

    // The next event or resync: the Event, then the finalizer; nothing said.
    assert.equal(await run(current()), undefined);
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["patchMemberStatus:ok", "createEvent:injected", "createEvent:ok", "patchMemberStatus:ok", "patchMemberFinalizers:ok"],
    );
    assert.deepEqual(
      kube.events().map((e) => [e.name, e.reason, e.message]),
      [[mark.name, "SaidFarewell", "sad to see you go patrick"]],
    );
    assert.equal(kube.member("patrick"), undefined, "let go once the Event exists");
    assert.equal(parsed(kube.deleted[0]).pendingEvent, undefined, "its final object owes nothing");
  });
});

describe("claim: the echo of a claim made here", () => {
  function withRecorder() {
    const kube = new MemoryKube();
    const { logger } = captureLogs();
    const recorder = createRecorder({ api: async () => kube, logger, now: clock(), retryDelaysMs: [] });
    const converge = createConverge({ api: async () => kube, policy: { finalizer: false }, logger, now: clock(), handlesEvent: recorder.handles });
    const run = (start: Parameters<typeof converge>[0]) => converge(start, AbortSignal.timeout(5_000));
    return { kube, recorder, run };
  }

  it("is answered without an API call, while the recorder writes its Event and after it wrote it", async () => {
    const { kube, recorder, run } = withRecorder();
    kube.add("patrick", { team: "blue" });
    const claimed = await run({ name: "patrick", namespace: "default" });
    assert.ok(claimed?.member.pendingEvent);
    // The status write comes back as an update event: the object as the claim wrote it, mark and all.
    const echo = claimed.member;
    recorder.recordPending(echo);
    const before = { ...kube.calls };
    assert.equal(await run(echo), undefined, "nothing to say, nothing to write: the recorder has it");
    assert.deepEqual(kube.calls, before, "no API call while the Event is being written");
    await recorder.settle();
    const written = { ...kube.calls };
    assert.equal(await run(echo), undefined);
    assert.deepEqual(kube.calls, written, "no API call for the late echo either");
    assert.equal(kube.events().length, 1);
    assert.equal(kube.status("patrick")?.["pendingEvent"], undefined, "the recorder cleared the mark");
  });

  it("an owed Event the recorder does not hold (written by another pod, or before a restart) is written here", async () => {
    const { kube, recorder, run } = withRecorder();
    kube.add("patrick", { team: "blue" });
    const claimed = await run({ name: "patrick", namespace: "default" });
    assert.ok(claimed?.member.pendingEvent);
    assert.equal(recorder.handles(claimed.member.pendingEvent.name), false);
    await run(claimed.member);
    assert.equal(kube.events().length, 1);
    assert.equal(kube.status("patrick")?.["pendingEvent"], undefined);
  });

  it("an Event the recorder gave up on is not remembered as written: the next convergence writes it", async () => {
    const { kube, recorder, run } = withRecorder();
    kube.add("patrick", { team: "blue" });
    const claimed = await run({ name: "patrick", namespace: "default" });
    assert.ok(claimed?.member.pendingEvent);
    kube.failNext("createEvent", "rejected");
    recorder.recordPending(claimed.member);
    await recorder.settle();
    assert.equal(recorder.handles(claimed.member.pendingEvent.name), false);
    assert.equal(kube.events().length, 0);
  });
});
