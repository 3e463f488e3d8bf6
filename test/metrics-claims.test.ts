// The claim and the resync report to the Metrics port (prom-client behind
// it): a claim that loses a race moves member_greeter_claims_lost_total, and
// nothing else does; a resync run moves its result and what its summary says.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createConverge } from "../functions/claim.ts";
import { RESYNC_TYPE } from "../functions/event-types.ts";
import { createHandler } from "../functions/handler.ts";
import { parseMember } from "../functions/member.ts";
import { FAREWELL_FINALIZER } from "../functions/next-step.ts";
import { createPrometheusMetrics, type PrometheusMetrics } from "../functions/prometheus.ts";
import { createRecorder } from "../functions/recorder.ts";
import { createResync } from "../functions/resync.ts";
import { captureLogs, MemoryKube } from "./support/memory-kube.ts";
import { moved, read, type Scraped } from "./support/scrape.ts";

const T0 = Date.parse("2026-11-25T10:00:00.000Z");

function setup(finalizer = false) {
  const kube = new MemoryKube();
  const metrics = createPrometheusMetrics({ processMetrics: false });
  const { logger } = captureLogs();
  let tick = 0;
  const converge = createConverge({ api: async () => kube, policy: { finalizer }, logger, now: () => new Date(T0 + tick++), metrics });
  const resync = createResync({ api: async () => kube, namespace: async () => "default", converge, logger, memberTimeoutMs: 5_000, metrics });
  return { kube, metrics, converge, resync };
}

const scraped = async (metrics: PrometheusMetrics): Promise<Scraped> => read((await metrics.scrape()).body);
const signal = () => AbortSignal.timeout(5_000);

describe("claims that lose a race", () => {
  it("another delivery's claim lands first: the claim gets 409, counted once; the Member is read again and nothing is said", async () => {
    const { kube, metrics, converge } = setup();
    const member = parseMember(kube.add("patrick", { team: "blue" }));
    kube.before("patchMemberStatus", (k) => void k.writeStatus("patrick", { team: "blue", greeting: "welcome patrick to the team blue", greetedAt: "x" }));
    const before = await scraped(metrics);
    assert.equal(await converge(member, signal()), undefined);
    assert.deepEqual(moved(before, await scraped(metrics)), { member_greeter_claims_lost_total: 1 });
    assert.deepEqual(
      kube.writes.map((w) => w.result),
      ["conflict"],
    );
  });

  it("the Member edited during the claim: lost once, then claimed from what it is now", async () => {
    const { kube, metrics, converge } = setup();
    const member = parseMember(kube.add("patrick", { team: "blue" }));
    kube.before("patchMemberStatus", (k) => void k.setTeam("patrick", "red"));
    const before = await scraped(metrics);
    const claimed = await converge(member, signal());
    assert.equal(claimed?.greeting.text, "welcome patrick to the team red");
    assert.deepEqual(moved(before, await scraped(metrics)), { member_greeter_claims_lost_total: 1 });
  });

  it("a claim without a race, and a 409 on a finalizer patch (no claim), count nothing", async () => {
    const { kube, metrics, converge } = setup(true);
    const before = await scraped(metrics);
    const quiet = parseMember(kube.add("ada", { team: "blue" }));
    assert.equal((await converge(quiet, signal()))?.greeting.text, "welcome ada to the team blue");
    const raced = parseMember(kube.add("patrick", { team: "blue" }));
    kube.before("patchMemberFinalizers", (k) => void k.touch("patrick"));
    assert.equal((await converge(raced, signal()))?.greeting.text, "welcome patrick to the team blue");
    assert.ok(
      kube.writes.some((w) => w.op === "patchMemberFinalizers" && w.result === "conflict"),
      "the finalizer patch did conflict",
    );
    assert.deepEqual(parseMember(kube.member("patrick") ?? {}).finalizers, [FAREWELL_FINALIZER]);
    assert.deepEqual(moved(before, await scraped(metrics)), {});
  });

  it("a claim refused (403) or about a Member deleted meanwhile (404) has lost no race", async () => {
    const { kube, metrics, converge } = setup();
    const before = await scraped(metrics);
    const refused = parseMember(kube.add("ada", { team: "blue" }));
    kube.failNext("patchMemberStatus", "rejected");
    await assert.rejects(converge(refused, signal()), /injected rejected/);
    const gone = parseMember(kube.add("bo", { team: "blue" }));
    kube.before("patchMemberStatus", (k) => void k.delete("bo"));
    assert.equal(await converge(gone, signal()), undefined);
    assert.deepEqual(
      kube.writes.map((w) => w.result),
      ["injected", "not-found"],
    );
    assert.deepEqual(moved(before, await scraped(metrics)), {});
  });
});

describe("resync runs", () => {
  const runs = (result: string) => `member_greeter_resync_runs_total{result="${result}"}`;
  const members = (outcome: string) => `member_greeter_resync_members_total{outcome="${outcome}"}`;
  const last = (outcome: string) => `member_greeter_resync_last_members{outcome="${outcome}"}`;

  it("a run that converges everything: its result, what its summary says, the last run's figures and its duration", async () => {
    const { kube, metrics, resync } = setup();
    for (const name of ["a", "b", "c"]) kube.add(name, { team: "blue" });
    kube.add("d", { team: "blue", status: { team: "blue" } });
    kube.create({ apiVersion: "helloworld.apimeister.com/v1", kind: "Member", metadata: { name: "Bad_Name" }, spec: { memberOf: 5 } });
    const before = await scraped(metrics);
    const summary = await resync(() => {});
    assert.deepEqual({ ...summary, ms: 0 }, { listed: 5, greeted: 3, failed: 0, invalid: 1, ms: 0 });
    const after = await scraped(metrics);
    assert.deepEqual(moved(before, after), {
      [runs("converged")]: 1,
      [members("listed")]: 5,
      [members("greeted")]: 3,
      [members("invalid")]: 1,
      [last("listed")]: 5,
      [last("greeted")]: 3,
      [last("invalid")]: 1,
      member_greeter_resync_duration_seconds_count: 1,
    });
    assert.equal(after.series.get(last("failed")), 0);
  });

  it("a run that leaves Members for the next one is partial; its figures replace the last run's", async () => {
    const { kube, metrics, resync } = setup();
    for (const name of ["a", "b"]) kube.add(name, { team: "blue" });
    await resync(() => {});
    kube.add("c", { team: "red" });
    kube.setTeam("a", "green");
    kube.failNext("patchMemberStatus", "unavailable", 2);
    const before = await scraped(metrics);
    await assert.rejects(
      resync(() => {}),
      /resync: 2 of 3 members could not be converged now/,
    );
    assert.deepEqual(moved(before, await scraped(metrics)), {
      [runs("partial")]: 1,
      [members("listed")]: 3,
      [members("failed")]: 2,
      [last("listed")]: 1,
      [last("greeted")]: -2,
      [last("failed")]: 2,
      member_greeter_resync_duration_seconds_count: 1,
    });
  });

  it("the greetings a resync says count as greetings, by reason, beside the run", async () => {
    const { kube, metrics, converge, resync } = setup();
    kube.add("a", { team: "blue" });
    kube.add("b", { team: "red", status: { team: "blue" } });
    const { logger } = captureLogs();
    const now = () => new Date(T0);
    const recorder = createRecorder({ api: async () => kube, logger, now });
    const handle = createHandler({
      source: "/s",
      logger,
      reader: undefined,
      claims: { converge, resync, recorder, policy: { finalizer: false } },
      newId: () => "r",
      now,
      timeoutMs: 5_000,
      metrics,
    });
    const before = await scraped(metrics);
    assert.deepEqual(await handle({ specversion: "1.0", id: "tick", source: "/ping", type: RESYNC_TYPE }), { kind: "ignored", reason: "resync done" });
    await recorder.settle();
    const change = moved(before, await scraped(metrics));
    assert.equal(change['member_greeter_greetings_total{reason="welcome"}'], 1);
    assert.equal(change['member_greeter_greetings_total{reason="team-change"}'], 1);
    assert.equal(change[runs("converged")], 1);
  });

  it("a run that cannot list has failed: counted, with its duration, and no figures", async () => {
    const { kube, metrics, resync } = setup();
    kube.failNext("listMembers", "unavailable");
    const before = await scraped(metrics);
    await assert.rejects(
      resync(() => {}),
      /injected unavailable/,
    );
    assert.deepEqual(moved(before, await scraped(metrics)), { [runs("failed")]: 1, member_greeter_resync_duration_seconds_count: 1 });
  });
});
