import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CloudEventV1 } from "cloudevents";
import { HttpError } from "../functions/errors.ts";
import type { Greeting } from "../functions/greeting.ts";
import { createHandler, GREETING_TYPE, type GreetingRecorder, type MemberReader } from "../functions/handler.ts";
import { createLogger } from "../functions/logger.ts";
import type { JsonObject, Member, MemberRef } from "../functions/member.ts";
import { memberObject } from "./support/greeter-server.ts";

function setup(options: { reader?: MemberReader; recorder?: GreetingRecorder } = {}) {
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: { write: (c) => void lines.push(...c.trim().split("\n")) } });
  const handle = createHandler({
    source: "/member-greeter",
    logger,
    reader: options.reader,
    recorder: options.recorder,
    newId: () => "reply-1",
    now: () => new Date("2026-11-25T10:00:00Z"),
  });
  const logs = () => {
    logger.flush();
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  };
  return { handle, logs };
}

function event(type: string, data: unknown, extra: Record<string, unknown> = {}): CloudEventV1<unknown> {
  return { specversion: "1.0", id: "ev-1", source: "https://10.96.0.1:443", type, data, ...extra };
}

const R = "dev.knative.apiserver.resource.";
const REF = "dev.knative.apiserver.ref.";

describe("handler: Resource mode", () => {
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
    const line = logs().find((l) => l["msg"] === "welcome patrick to the team blue");
    assert.deepEqual(line && { ...line, time: undefined }, {
      time: undefined, level: "info", msg: "welcome patrick to the team blue", member: "patrick", namespace: "default",
      team: "blue", reason: "welcome", eventId: "ev-1", eventType: `${R}add`,
    });
  });

  it("greets team changes on update and ignores updates that change no team", async () => {
    const { handle } = setup();
    const moved = await handle(event(`${R}update`, memberObject("patrick", "red", "blue")));
    assert.equal(moved.kind === "greeted" && moved.greeting.text, "patrick moved from the team blue to the team red");
    assert.equal(moved.kind === "greeted" && moved.reply.data?.reason, "team-change");
    const same = await handle(event(`${R}update`, memberObject("patrick", "red", "red")));
    assert.equal(same.kind, "ignored");
  });

  it("says farewell on delete", async () => {
    const { handle } = setup();
    const out = await handle(event(`${R}delete`, memberObject("patrick", "red", "red")));
    assert.equal(out.kind === "greeted" && out.greeting.text, "sad to see you go patrick");
  });

  it("ignores other kinds and other event types, with a debug line", async () => {
    const { handle, logs } = setup();
    assert.equal((await handle(event(`${R}add`, { kind: "Pod", metadata: { name: "p" } }))).kind, "ignored");
    assert.equal((await handle(event("com.example.other", "not even an object"))).kind, "ignored");
    assert.ok(logs().every((l) => l["level"] === "debug"));
  });

  it("uses the event's kind and namespace extensions when the data lacks them", async () => {
    const { handle } = setup();
    const out = await handle(event(`${R}add`, { metadata: { name: "patrick" } }, { kind: "Member", namespace: "blue-team" }));
    assert.equal(out.kind === "greeted" && out.greeting.member.namespace, "blue-team");
  });

  it("rejects data that is not a Member object with a 400", async () => {
    const { handle } = setup();
    for (const data of [undefined, "x", [1], { kind: "Member", metadata: { name: "p", namespace: "d" }, spec: { memberOf: 1 } }]) {
      await assert.rejects(handle(event(`${R}add`, data)), (err: unknown) => err instanceof HttpError && err.status === 400);
    }
  });
});

describe("handler: Reference mode", () => {
  const reader = (objects: Record<string, JsonObject>, calls: MemberRef[] = []): MemberReader => ({
    async getMember(ref) {
      calls.push(ref);
      return objects[`${ref.namespace}/${ref.name}`];
    },
  });
  const ref = { kind: "Member", namespace: "default", name: "patrick", apiVersion: "helloworld.apimeister.com/v1" };

  it("reads the Member from the API server for add and update", async () => {
    const calls: MemberRef[] = [];
    const { handle } = setup({ reader: reader({ "default/patrick": memberObject("patrick", "red", "blue") }, calls) });
    const add = await handle(event(`${REF}add`, ref));
    assert.equal(add.kind, "ignored", "already greeted: status records a team");
    const update = await handle(event(`${REF}update`, ref));
    assert.equal(update.kind === "greeted" && update.greeting.text, "patrick moved from the team blue to the team red");
    assert.deepEqual(calls, [{ name: "patrick", namespace: "default" }, { name: "patrick", namespace: "default" }]);
  });

  it("greets a delete from the reference alone, without the API server", async () => {
    const { handle } = setup();
    const out = await handle(event(`${REF}delete`, ref));
    assert.equal(out.kind === "greeted" && out.greeting.text, "sad to see you go patrick");
    assert.equal(out.kind === "greeted" && out.greeting.member.team, null);
  });

  it("answers 2xx with no greeting and an info line when the Member is already gone", async () => {
    const { handle, logs } = setup({ reader: reader({}) });
    assert.equal((await handle(event(`${REF}add`, ref))).kind, "ignored");
    assert.ok(logs().some((l) => l["level"] === "info" && l["msg"] === "member no longer exists, nothing to greet"));
  });

  it("passes a 503 through when the API server is unreachable, and greets nothing", async () => {
    const failing: MemberReader = { getMember: () => Promise.reject(new HttpError("ERR_CLUSTER_UNAVAILABLE", "down")) };
    const { handle, logs } = setup({ reader: failing });
    await assert.rejects(handle(event(`${REF}add`, ref)), (err: unknown) => err instanceof HttpError && err.status === 503);
    assert.ok(!logs().some((l) => l["level"] === "info"));
  });

  it("refuses Reference-mode add when no cluster is configured", async () => {
    const { handle } = setup();
    await assert.rejects(handle(event(`${REF}add`, ref)), (err: unknown) => err instanceof HttpError && err.code === "ERR_NO_CLUSTER");
  });
});

describe("handler: recording", () => {
  it("logs the greeting before recording it, and records each greeting once", async () => {
    const order: string[] = [];
    const recorded: [Greeting, Member | MemberRef][] = [];
    let logged = () => false;
    const recorder: GreetingRecorder = {
      async record(greeting, member) {
        order.push(logged() ? "after-log" : "before-log");
        recorded.push([greeting, member]);
      },
    };
    const { handle, logs } = setup({ recorder });
    logged = () => logs().some((l) => l["msg"] === "welcome nina");
    await handle(event(`${R}add`, memberObject("nina")));
    await handle(event(`${R}update`, memberObject("nina", "", "")));
    assert.deepEqual(order, ["after-log"]);
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0]?.[1].name, "nina");
  });
});
