import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HttpError } from "../functions/errors.ts";
import { farewellFor, greetingFor } from "../functions/greeting.ts";
import type { KubeApi, MemberEvent, MemberStatus } from "../functions/kube-client.ts";
import { createLogger } from "../functions/logger.ts";
import { createRecorder } from "../functions/recorder.ts";
import type { Member, MemberRef } from "../functions/member.ts";

const patrick: Member = { name: "patrick", namespace: "default", team: "red", recordedTeam: "blue", uid: "u1", resourceVersion: "5", generation: 2 };

function fakeApi(failures: HttpError[] = []) {
  const statuses: [MemberRef, MemberStatus][] = [];
  const events: MemberEvent[] = [];
  let calls = 0;
  const next = () => {
    calls++;
    const err = failures.shift();
    if (err) throw err;
  };
  const api: KubeApi = {
    getMember: () => Promise.resolve(undefined),
    async patchMemberStatus(ref, status) {
      next();
      statuses.push([ref, status]);
    },
    async createEvent(event) {
      next();
      events.push(event);
    },
  };
  return { api, statuses, events, calls: () => calls };
}

function setup(api: KubeApi) {
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: { write: (c) => void lines.push(...c.trim().split("\n")) } });
  const sleeps: number[] = [];
  const recorder = createRecorder({
    api: async () => api,
    logger,
    now: () => new Date("2026-11-25T10:00:00Z"),
    sleep: async (ms) => void sleeps.push(ms),
  });
  const logs = () => {
    logger.flush();
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return { recorder, logs, sleeps };
}

const unavailable = () => new HttpError("ERR_CLUSTER_UNAVAILABLE", "API server unreachable");

describe("recording greetings on the cluster", () => {
  it("writes status.team, the greeting and its time, and an Event with a reason per kind of greeting", async () => {
    const fake = fakeApi();
    const { recorder } = setup(fake.api);
    const greeting = greetingFor("update", patrick);
    assert.ok(greeting);
    await recorder.record(greeting, patrick);
    assert.deepEqual(fake.statuses, [
      [patrick, { team: "red", greeting: "patrick moved from the team blue to the team red", greetedAt: "2026-11-25T10:00:00.000Z", observedGeneration: 2 }],
    ]);
    assert.deepEqual(fake.events, [
      {
        member: { name: "patrick", namespace: "default", uid: "u1" },
        reason: "TeamChanged",
        message: "patrick moved from the team blue to the team red",
        time: new Date("2026-11-25T10:00:00Z"),
      },
    ]);
  });

  it("writes no status for a farewell (the object is gone), only the Event", async () => {
    const fake = fakeApi();
    const { recorder } = setup(fake.api);
    await recorder.record(farewellFor(patrick), { name: "patrick", namespace: "default" });
    assert.equal(fake.statuses.length, 0);
    assert.equal(fake.events[0]?.reason, "SaidFarewell");
  });

  it("retries a briefly unavailable API server, then succeeds", async () => {
    const fake = fakeApi([unavailable(), unavailable()]);
    const { recorder, sleeps, logs } = setup(fake.api);
    const greeting = greetingFor("add", { ...patrick, recordedTeam: undefined });
    assert.ok(greeting);
    await recorder.record(greeting, patrick);
    assert.equal(fake.statuses.length, 1);
    assert.equal(fake.events.length, 1);
    assert.ok(sleeps.length >= 1);
    assert.ok(!logs().some((l) => l["level"] === "warn"));
  });

  it("gives up after its retries with a warning, never throwing (the greeting stands)", async () => {
    const fake = fakeApi(Array.from({ length: 10 }, unavailable));
    const { recorder, logs } = setup(fake.api);
    const greeting = greetingFor("add", { ...patrick, recordedTeam: undefined });
    assert.ok(greeting);
    await recorder.record(greeting, patrick);
    assert.equal(fake.calls(), 6, "status and event, three attempts each");
    const warnings = logs().filter((l) => l["level"] === "warn");
    assert.deepEqual(warnings.map((w) => [w["write"], w["attempts"]]).sort(), [["event", 3], ["status", 3]]);
  });

  it("does not retry a refusal (RBAC), and treats a vanished member as nothing to record", async () => {
    const fake = fakeApi([new HttpError("ERR_CLUSTER_REJECTED", "forbidden"), new HttpError("ERR_NOT_FOUND", "gone")]);
    const { recorder, logs } = setup(fake.api);
    const greeting = greetingFor("add", { ...patrick, recordedTeam: undefined });
    assert.ok(greeting);
    await recorder.record(greeting, patrick);
    assert.equal(fake.calls(), 2);
    const levels = logs().map((l) => l["level"]).sort();
    assert.deepEqual(levels, ["info", "warn"]);
  });
});
