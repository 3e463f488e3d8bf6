import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { farewellFor, greetingFor, greetingForState, type Greeting } from "../functions/greeting.ts";
import { KubeError } from "../functions/kube-errors.ts";
import { parseMember, type Member } from "../functions/member.ts";
import { createRecorder, eventName, eventReasons, type RecorderOptions } from "../functions/recorder.ts";
import { captureLogs, memberFixture, MemoryKube } from "./support/memory-kube.ts";

const TIME = new Date("2026-11-25T10:00:00Z");
const patrick: Member = memberFixture({ team: "red", recordedTeam: "blue", uid: "u1", resourceVersion: "5", generation: 2 });

function setup(options: Partial<Pick<RecorderOptions, "retryDelaysMs" | "api" | "concurrency">> = {}) {
  const kube = new MemoryKube();
  const { logger, logs } = captureLogs();
  const sleeps: number[] = [];
  const recorder = createRecorder({
    api: options.api ?? (async () => kube),
    logger,
    now: () => TIME,
    sleep: async (ms) => void sleeps.push(ms),
    ...(options.retryDelaysMs === undefined ? {} : { retryDelaysMs: options.retryDelaysMs }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
  });
  return { kube, recorder, logs, sleeps };
}

function must<T>(value: T | undefined): T {
  assert.ok(value !== undefined);
  return value;
}

const moved: Greeting = must(greetingFor("update", patrick));
const welcome: Greeting = must(greetingForState({ ...patrick, recordedTeam: undefined }));
const fields = { member: "patrick", namespace: "default" };

describe("recorder: an Event per claimed greeting", () => {
  it("writes the Event, named after the claim, with a reason per kind of greeting", async () => {
    const { kube, recorder, logs, sleeps } = setup();
    recorder.record(moved, patrick);
    await recorder.settle();
    assert.deepEqual(kube.events(), [
      {
        name: eventName(moved, patrick),
        member: { name: "patrick", namespace: "default", uid: "u1" },
        reason: "TeamChanged",
        message: "patrick moved from the team blue to the team red",
        time: TIME,
      },
    ]);
    assert.equal(kube.calls.createEvent, 1);
    assert.deepEqual(sleeps, []);
    assert.deepEqual(logs(), []);
  });

  it("has a reason for each kind of greeting", () => {
    assert.deepEqual(eventReasons, { welcome: "Welcomed", "team-change": "TeamChanged", farewell: "SaidFarewell" });
  });

  it("records a farewell to a bare reference, with no uid", async () => {
    const { kube, recorder } = setup();
    const ref = { name: "patrick", namespace: "ns1" };
    recorder.record(farewellFor(ref), ref);
    await recorder.settle();
    assert.deepEqual(kube.events(), [
      {
        name: eventName(farewellFor(ref), ref),
        member: { name: "patrick", namespace: "ns1", uid: undefined },
        reason: "SaidFarewell",
        message: "sad to see you go patrick",
        time: TIME,
      },
    ]);
  });

  it("does not wait: record returns before the Event is written, and never throws", async () => {
    const { kube, recorder } = setup();
    let release = () => {};
    kube.before("createEvent", () => new Promise<void>((resolve) => (release = resolve)));
    assert.equal(recorder.record(welcome, patrick), undefined);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(kube.events(), []);
    release();
    await recorder.settle();
    assert.equal(kube.events().length, 1);
  });

  it("a client that cannot be had is a warning, not a throw", async () => {
    const { recorder, logs } = setup({ api: () => Promise.reject(new KubeError("rejected", "cannot use the kubeconfig")) });
    recorder.record(welcome, patrick);
    await recorder.settle();
    assert.deepEqual(logs(), [
      { level: "warn", msg: "recording the greeting as an Event failed: cannot use the kubeconfig", ...fields, reason: "Welcomed", attempts: 1 },
    ]);
  });
});

describe("recorder: retries", () => {
  it("retries an unavailable API server after 100 and 400 ms, then succeeds quietly", async () => {
    const { kube, recorder, logs, sleeps } = setup();
    kube.failNext("createEvent", "unavailable", 2);
    recorder.record(welcome, patrick);
    await recorder.settle();
    assert.deepEqual(sleeps, [100, 400]);
    assert.equal(kube.calls.createEvent, 3);
    assert.equal(kube.events().length, 1);
    assert.deepEqual(logs(), []);
  });

  it("gives up after 100, 400 and 1600 ms with one warning saying how many attempts", async () => {
    const { kube, recorder, logs, sleeps } = setup();
    kube.failNext("createEvent", "unavailable", 10);
    recorder.record(welcome, patrick);
    await recorder.settle();
    assert.deepEqual(sleeps, [100, 400, 1600]);
    assert.equal(kube.calls.createEvent, 4);
    assert.deepEqual(kube.events(), []);
    assert.deepEqual(logs(), [
      { level: "warn", msg: "recording the greeting as an Event failed: injected unavailable for createEvent", ...fields, reason: "Welcomed", attempts: 4 },
    ]);
  });

  it("takes its pauses from retryDelaysMs", async () => {
    const { kube, recorder, sleeps, logs } = setup({ retryDelaysMs: [5] });
    kube.failNext("createEvent", "unavailable", 10);
    recorder.record(welcome, patrick);
    await recorder.settle();
    assert.deepEqual(sleeps, [5]);
    assert.equal(kube.calls.createEvent, 2);
    assert.equal(logs()[0]?.["attempts"], 2);
  });

  for (const kind of ["rejected", "not-found", "conflict"] as const) {
    it(`does not retry ${kind}`, async () => {
      const { kube, recorder, sleeps, logs } = setup();
      kube.failNext("createEvent", kind);
      recorder.record(welcome, patrick);
      await recorder.settle();
      assert.deepEqual(sleeps, []);
      assert.equal(kube.calls.createEvent, 1);
      assert.deepEqual(logs(), [
        { level: "warn", msg: `recording the greeting as an Event failed: injected ${kind} for createEvent`, ...fields, reason: "Welcomed", attempts: 1 },
      ]);
    });
  }

  it("a retry after a lost answer finds the Event there: one Event, no warning", async () => {
    const { kube, recorder, sleeps, logs } = setup();
    kube.loseAnswer("createEvent");
    recorder.record(welcome, patrick);
    await recorder.settle();
    assert.deepEqual(sleeps, [100]);
    assert.equal(kube.calls.createEvent, 2);
    assert.deepEqual(
      kube.writes.map((w) => [w.name, w.result]),
      [
        [eventName(welcome, patrick), "answer-lost"],
        [eventName(welcome, patrick), "ok"],
      ],
    );
    assert.equal(kube.events().length, 1);
    assert.deepEqual(logs(), []);
  });

  it("one claim recorded twice makes one Event; two claims make two", async () => {
    const { kube, recorder } = setup();
    recorder.record(welcome, patrick);
    recorder.record(welcome, patrick);
    recorder.record(welcome, { ...patrick, resourceVersion: "9" });
    await recorder.settle();
    assert.equal(kube.calls.createEvent, 3);
    assert.equal(kube.events().length, 2);
  });
});

describe("recorder: settle", () => {
  it("resolves at once when nothing is in flight", async () => {
    const { recorder } = setup();
    await recorder.settle();
  });

  it("waits for every Event in flight, those started while it waits included", async () => {
    const { kube, recorder } = setup();
    const releases: (() => void)[] = [];
    kube.before("createEvent", () => new Promise<void>((resolve) => releases.push(resolve)), 2);
    recorder.record(welcome, patrick);
    let settled = false;
    const settling = recorder.settle().then(() => void (settled = true));
    recorder.record(moved, patrick);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(releases.length, 2);
    releases[0]?.();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, "the second Event is still being written");
    assert.equal(kube.events().length, 1);
    releases[1]?.();
    await settling;
    assert.equal(settled, true);
    assert.equal(kube.events().length, 2);
  });

  it("waits through the retries' pauses", async () => {
    const kube = new MemoryKube();
    const { logger } = captureLogs();
    const recorder = createRecorder({ api: async () => kube, logger, now: () => TIME, retryDelaysMs: [30] });
    kube.failNext("createEvent", "unavailable");
    const started = performance.now();
    recorder.record(welcome, patrick);
    await recorder.settle();
    assert.ok(performance.now() - started >= 25, "the real sleep was waited for");
    assert.equal(kube.events().length, 1);
  });
});

describe("recorder: a bounded number of Events written at once", () => {
  /** Holds each createEvent a little, counting how many are in flight. */
  function measure(kube: MemoryKube, calls: number) {
    const seen = { inFlight: 0, max: 0 };
    kube.before(
      "createEvent",
      async () => {
        seen.inFlight++;
        seen.max = Math.max(seen.max, seen.inFlight);
        await new Promise((resolve) => setTimeout(resolve, 2));
        seen.inFlight--;
      },
      calls,
    );
    return seen;
  }
  const claims = (n: number) => Array.from({ length: n }, (_, i) => ({ ...patrick, resourceVersion: String(100 + i) }));

  it("writes at most `concurrency` at once, and every one in the end", async () => {
    const { kube, recorder } = setup({ concurrency: 3 });
    const seen = measure(kube, 10);
    for (const m of claims(10)) recorder.record(welcome, m);
    await recorder.settle();
    assert.equal(seen.max, 3);
    assert.equal(kube.events().length, 10);
  });

  it("writes 8 at once by default", async () => {
    const { kube, recorder } = setup();
    const seen = measure(kube, 20);
    for (const m of claims(20)) recorder.record(welcome, m);
    await recorder.settle();
    assert.equal(seen.max, 8);
    assert.equal(kube.events().length, 20);
  });

  it("a write keeps its slot through its retries; the next waits its turn, in order", async () => {
    const { kube, recorder } = setup({ concurrency: 1 });
    const [first, second, third] = claims(3).map((m) => eventName(welcome, m));
    kube.failNext("createEvent", "unavailable");
    for (const m of claims(3)) recorder.record(welcome, m);
    await recorder.settle();
    assert.deepEqual(
      kube.writes.map((w) => [w.name, w.result]),
      [
        [first, "injected"],
        [first, "ok"],
        [second, "ok"],
        [third, "ok"],
      ],
    );
  });

  it("a slot handed over stays taken: Events recorded later still wait their turn", async () => {
    const { kube, recorder } = setup({ concurrency: 2 });
    const releases: (() => void)[] = [];
    const seen = { inFlight: 0, max: 0 };
    kube.before(
      "createEvent",
      async () => {
        seen.inFlight++;
        seen.max = Math.max(seen.max, seen.inFlight);
        await new Promise<void>((resolve) => releases.push(resolve));
        seen.inFlight--;
      },
      6,
    );
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const all = claims(6);
    for (const m of all.slice(0, 3)) recorder.record(welcome, m);
    await turn();
    assert.equal(releases.length, 2, "two written, one waiting");
    releases.shift()?.();
    await turn();
    assert.equal(kube.events().length, 1);
    assert.equal(releases.length, 2, "the third took the slot of the first");
    for (const m of all.slice(3)) recorder.record(welcome, m);
    await turn();
    assert.equal(releases.length, 2, "the later ones wait");
    for (let i = 0; i < 20 && kube.events().length < 6; i++) {
      releases.shift()?.();
      await turn();
    }
    await recorder.settle();
    assert.equal(kube.events().length, 6);
    assert.equal(seen.max, 2);
  });

  it("a write that gives up frees its slot", async () => {
    const { kube, recorder, logs } = setup({ concurrency: 1 });
    kube.failNext("createEvent", "rejected");
    for (const m of claims(2)) recorder.record(welcome, m);
    await recorder.settle();
    assert.equal(kube.events().length, 1);
    assert.equal(logs().length, 1);
  });
});

describe("recorder: Event names", () => {
  const subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

  it("is the Member's name and 16 hex digits, the same for the same claim", () => {
    const name = eventName(welcome, patrick);
    assert.match(name, /^patrick\.[0-9a-f]{16}$/);
    assert.equal(eventName(welcome, { ...patrick }), name);
  });

  it("differs by uid, resourceVersion, reason and text", () => {
    const names = new Set([
      eventName(welcome, patrick),
      eventName(welcome, { ...patrick, uid: "u2" }),
      eventName(welcome, { ...patrick, resourceVersion: "6" }),
      eventName(moved, patrick),
      eventName({ ...welcome, text: "welcome patrick" }, patrick),
      eventName(farewellFor(patrick), patrick),
    ]);
    assert.equal(names.size, 6);
  });

  it("stays within 253 characters for the longest Member names", () => {
    const long = "a".repeat(253);
    const name = eventName(welcome, { ...patrick, name: long });
    assert.equal(name.length, 253);
    assert.match(name, subdomain);
  });

  it("is a valid DNS subdomain whatever character the cut lands on", () => {
    for (const cut of ["-", "."]) {
      const long = `${"a".repeat(235)}${cut}${"b".repeat(17)}`;
      assert.match(long, subdomain, "a valid Member name");
      assert.match(eventName(welcome, { ...patrick, name: long }), subdomain);
    }
  });
});

describe("recorder: recordPending, the Event a claim owes", () => {
  const owed = { name: "patrick.0123456789abcdef", reason: "TeamChanged" };
  const claimStatus = { team: "red", greeting: "patrick moved from the team blue to the team red", greetedAt: "2026-11-25T09:59:59.000Z", pendingEvent: owed };
  const { pendingEvent: _mark, ...cleared } = claimStatus;

  /** patrick as his claim wrote him: status.pendingEvent names the Event it owes. */
  function claimed(kube: MemoryKube): Member {
    return parseMember(kube.add("patrick", { team: "red", status: claimStatus }));
  }

  it("writes the Event by the owed name, worded from status.greeting, then clears the mark under the claim's resourceVersion", async () => {
    const { kube, recorder, logs, sleeps } = setup();
    const member = claimed(kube);
    assert.equal(recorder.recordPending(member), undefined);
    await recorder.settle();
    assert.deepEqual(kube.events(), [
      {
        name: "patrick.0123456789abcdef",
        member: { name: "patrick", namespace: "default", uid: "uid-patrick-1" },
        reason: "TeamChanged",
        message: "patrick moved from the team blue to the team red",
        time: TIME,
      },
    ]);
    assert.deepEqual(kube.writes, [
      { op: "createEvent", name: "patrick.0123456789abcdef", resourceVersion: undefined, result: "ok" },
      { op: "patchMemberStatus", name: "patrick", resourceVersion: member.resourceVersion, result: "ok" },
    ]);
    assert.deepEqual(kube.status("patrick"), cleared, "the mark is removed, the rest of status kept");
    assert.equal(kube.calls.getMember, 0);
    assert.deepEqual(sleeps, []);
    assert.deepEqual(logs(), []);
  });

  it("a Member that owes nothing: no call at all", async () => {
    const { kube, recorder, logs } = setup();
    recorder.recordPending(parseMember(kube.add("patrick", { team: "red", status: cleared })));
    await recorder.settle();
    assert.deepEqual(kube.writes, []);
    assert.equal(kube.calls.getMember, 0);
    assert.deepEqual(logs(), []);
  });

  it("a conflict on clearing: reads again and, the same mark still there, clears it under the new version (no pause, one Event)", async () => {
    const { kube, recorder, logs, sleeps } = setup();
    const member = claimed(kube);
    let touched: string | undefined;
    kube.before("patchMemberStatus", (k) => void (touched = parseMember(k.touch("patrick")).resourceVersion));
    recorder.recordPending(member);
    await recorder.settle();
    assert.deepEqual(
      kube.writes.map((w) => [w.op, w.resourceVersion, w.result]),
      [
        ["createEvent", undefined, "ok"],
        ["patchMemberStatus", member.resourceVersion, "conflict"],
        ["createEvent", undefined, "ok"],
        ["patchMemberStatus", touched, "ok"],
      ],
    );
    assert.notEqual(touched, member.resourceVersion);
    assert.equal(kube.calls.getMember, 1);
    assert.equal(kube.events().length, 1);
    assert.deepEqual(kube.status("patrick"), cleared);
    assert.deepEqual(sleeps, []);
    assert.deepEqual(logs(), []);
  });

  it("a conflict on clearing: the mark changed meanwhile (a newer claim owes its own Event) stops it", async () => {
    const { kube, recorder, logs, sleeps } = setup();
    const member = claimed(kube);
    const newer = {
      team: "",
      greeting: "patrick left the team red",
      greetedAt: "2026-11-25T10:00:01.000Z",
      pendingEvent: { name: "patrick.1111111111111111", reason: "TeamChanged" },
    };
    kube.before("patchMemberStatus", (k) => void k.writeStatus("patrick", newer));
    recorder.recordPending(member);
    await recorder.settle();
    assert.deepEqual(
      kube.writes.map((w) => [w.op, w.name, w.result]),
      [
        ["createEvent", "patrick.0123456789abcdef", "ok"],
        ["patchMemberStatus", "patrick", "conflict"],
      ],
    );
    assert.equal(kube.calls.getMember, 1);
    assert.deepEqual(kube.status("patrick"), newer, "the newer mark is left for its own claim's recorder");
    assert.deepEqual(sleeps, []);
    assert.deepEqual(logs(), []);
  });

  it("a conflict on clearing: the Member gone meanwhile stops it quietly", async () => {
    const { kube, recorder, logs } = setup();
    const member = claimed(kube);
    kube.before("patchMemberStatus", (k) => void k.delete("patrick"));
    recorder.recordPending(member);
    await recorder.settle();
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["createEvent:ok", "patchMemberStatus:not-found"],
    );
    assert.equal(kube.calls.getMember, 0);
    assert.equal(kube.events().length, 1);
    assert.deepEqual(logs(), [], "the mark went with the Member: nothing is owed");
  });

  it("unavailable: retried after the configured pauses, reading the Member again each time, then quietly done", async () => {
    const { kube, recorder, logs, sleeps } = setup({ retryDelaysMs: [5, 7, 11] });
    const member = claimed(kube);
    kube.failNext("createEvent", "unavailable");
    kube.failNext("patchMemberStatus", "unavailable");
    recorder.recordPending(member);
    await recorder.settle();
    assert.deepEqual(sleeps, [5, 7]);
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["createEvent:injected", "createEvent:ok", "patchMemberStatus:injected", "createEvent:ok", "patchMemberStatus:ok"],
    );
    assert.equal(kube.calls.getMember, 2);
    assert.equal(kube.events().length, 1);
    assert.deepEqual(kube.status("patrick"), cleared);
    assert.deepEqual(logs(), []);
  });

  it("unavailable throughout: the configured pauses, then one warning, and the mark left for the next convergence", async () => {
    const { kube, recorder, logs, sleeps } = setup({ retryDelaysMs: [5, 7] });
    const member = claimed(kube);
    kube.failNext("createEvent", "unavailable", 10);
    recorder.recordPending(member);
    await recorder.settle();
    assert.deepEqual(sleeps, [5, 7]);
    assert.equal(kube.calls.createEvent, 3);
    assert.equal(kube.calls.patchMemberStatus, 0);
    assert.deepEqual(kube.status("patrick"), claimStatus);
    assert.deepEqual(logs(), [
      { level: "warn", msg: "recording the greeting as an Event failed: injected unavailable for createEvent", ...fields, reason: "TeamChanged", attempts: 3 },
    ]);
  });

  it("a refused create (a 403 while a restarted API server syncs RBAC) is tried again like an outage; still refused: one warning, the mark left", async () => {
    const { kube, recorder, logs, sleeps } = setup();
    const member = claimed(kube);
    kube.failNext("createEvent", "rejected", 4);
    recorder.recordPending(member);
    await recorder.settle();
    assert.deepEqual(sleeps, [100, 400, 1600]);
    assert.deepEqual(
      kube.writes.map((w) => `${w.op}:${w.result}`),
      ["createEvent:injected", "createEvent:injected", "createEvent:injected", "createEvent:injected"],
    );
    assert.deepEqual(kube.events(), []);
    assert.deepEqual(kube.status("patrick"), claimStatus, "still owed, for the next convergence");
    assert.deepEqual(logs(), [
      { level: "warn", msg: "recording the greeting as an Event failed: injected rejected for createEvent", ...fields, reason: "TeamChanged", attempts: 4 },
    ]);
  });

  it("a create refused once, then taken: the Event written and the mark cleared", async () => {
    const { kube, recorder, logs, sleeps } = setup();
    const member = claimed(kube);
    kube.failNext("createEvent", "rejected", 1);
    recorder.recordPending(member);
    await recorder.settle();
    assert.deepEqual(sleeps, [100]);
    assert.deepEqual(
      kube.events().map((e) => e.name),
      ["patrick.0123456789abcdef"],
    );
    assert.deepEqual(kube.status("patrick"), cleared);
    assert.deepEqual(logs(), []);
  });

  it("shares the slots of record(), and settle() waits for it", async () => {
    const { kube, recorder } = setup({ concurrency: 1 });
    const member = claimed(kube);
    recorder.record(welcome, patrick);
    recorder.recordPending(member);
    await recorder.settle();
    assert.deepEqual(
      kube.writes.map((w) => [w.op, w.name]),
      [
        ["createEvent", eventName(welcome, patrick)],
        ["createEvent", "patrick.0123456789abcdef"],
        ["patchMemberStatus", "patrick"],
      ],
    );
  });
});

describe("recorder: claims first, the Events they owe once the claims stop", () => {
  const owing = (name: string, resourceVersion: string): Member =>
    memberFixture({
      name,
      uid: `u-${name}`,
      resourceVersion,
      recordedGreeting: `welcome ${name}`,
      pendingEvent: { name: `${name}.0123456789abcdef`, reason: "Welcomed" },
    });

  function quietSetup(quietMs: number, maxDelayMs: number) {
    const kube = new MemoryKube();
    const { logger } = captureLogs();
    const recorder = createRecorder({ api: async () => kube, logger, now: () => TIME, quietMs, maxDelayMs });
    const add = (name: string): Member => {
      const object = kube.add(name, {
        team: "blue",
        status: { team: "blue", greeting: `welcome ${name}`, greetedAt: "t", pendingEvent: { name: `${name}.0123456789abcdef`, reason: "Welcomed" } },
      });
      return owing(name, String((object["metadata"] as { resourceVersion: string }).resourceVersion));
    };
    return { kube, recorder, add };
  }
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it("writes nothing while claims keep coming, then every owed Event once they stop", async () => {
    const { kube, recorder, add } = quietSetup(80, 5_000);
    for (let i = 0; i < 5; i++) {
      recorder.recordPending(add(`m${i}`));
      await sleep(20);
    }
    assert.equal(kube.calls.createEvent, 0, "no Event while the claims come 20 ms apart");
    assert.equal(recorder.handles("m0.0123456789abcdef"), true, "held, and known to be this process's to write");
    await sleep(200);
    assert.equal(kube.events().length, 5);
    for (let i = 0; i < 5; i++) assert.equal(kube.status(`m${i}`)?.["pendingEvent"], undefined, `m${i}'s mark cleared`);
  });

  it("an Event waits at most maxDelayMs, however long the claims go on", async () => {
    const { kube, recorder, add } = quietSetup(1_000, 60);
    recorder.recordPending(add("first"));
    for (let i = 0; i < 8; i++) {
      recorder.recordPending(add(`later${i}`));
      await sleep(20);
    }
    assert.ok(
      kube.events().some((e) => e.name === "first.0123456789abcdef"),
      "written after 60 ms although the claims never paused for 1 s",
    );
    await recorder.settle();
  });

  it("settle writes what waits for a quiet moment at once (shutdown)", async () => {
    const { kube, recorder, add } = quietSetup(10_000, 10_000);
    recorder.recordPending(add("held"));
    const started = performance.now();
    await recorder.settle();
    assert.ok(performance.now() - started < 2_000, "not held for the quiet period");
    assert.equal(kube.events().length, 1);
  });

  it("quietMs 0 writes at once", async () => {
    const { kube, recorder, add } = quietSetup(0, 5_000);
    recorder.recordPending(add("now"));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(kube.calls.createEvent, 1);
    await recorder.settle();
  });
});
