import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { createConverge, type Claimed, type Converge } from "../functions/claim.ts";
import { KubeError } from "../functions/kube-errors.ts";
import type { Member, MemberRef } from "../functions/member.ts";
import { createResync, type ResyncOptions } from "../functions/resync.ts";
import { captureLogs, MemoryKube } from "./support/memory-kube.ts";

const T0 = Date.parse("2026-11-25T10:00:00.000Z");

function setup(options: { namespace?: string; pageSize?: number; concurrency?: number; converge?: (real: Converge) => Converge } = {}) {
  const kube = new MemoryKube();
  const { logger, logs } = captureLogs();
  let tick = 0;
  const real = createConverge({ api: async () => kube, policy: { finalizer: false }, logger, now: () => new Date(T0 + tick++) });
  const resyncOptions: ResyncOptions = {
    api: async () => kube,
    namespace: async () => options.namespace ?? "default",
    converge: options.converge?.(real) ?? real,
    logger,
    memberTimeoutMs: 5_000,
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
  };
  const resync = createResync(resyncOptions);
  const said: string[] = [];
  const say = (claimed: Claimed) => void said.push(claimed.greeting.text);
  return { kube, logs, resync, said, say };
}

/** Wraps converge to measure how many convergences run at once. */
function measured(hold = () => delay(2)) {
  const seen = { inFlight: 0, max: 0, started: [] as string[] };
  const wrap =
    (real: Converge): Converge =>
    async (start, signal) => {
      seen.inFlight++;
      seen.max = Math.max(seen.max, seen.inFlight);
      seen.started.push(start.name);
      try {
        await hold();
        return await real(start, signal);
      } finally {
        seen.inFlight--;
      }
    };
  return { seen, wrap };
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `m${String(i).padStart(2, "0")}`);
const withoutMs = (record: Record<string, unknown>) => ({ ...record, ms: typeof record["ms"] === "number" && record["ms"] >= 0 ? "ms" : record["ms"] });

describe("resync: converge every Member of the namespace", () => {
  it("walks every page with the continue token and converges each Member once", async () => {
    const { seen, wrap } = measured();
    const { kube, resync, said, say } = setup({ pageSize: 7, concurrency: 3, converge: wrap });
    for (const name of names(20)) kube.add(name, { team: "blue" });
    const summary = await resync(say);
    assert.equal(kube.pages.length, 3);
    assert.deepEqual(
      kube.pages.map((p) => [p.namespace, p.limit, p.continue === undefined]),
      [
        ["default", 7, true],
        ["default", 7, false],
        ["default", 7, false],
      ],
    );
    assert.notEqual(kube.pages[1]?.continue, kube.pages[2]?.continue);
    assert.deepEqual([...seen.started].sort(), names(20));
    assert.deepEqual(
      [...said].sort(),
      names(20).map((n) => `welcome ${n} to the team blue`),
    );
    assert.deepEqual(withoutMs({ ...summary }), { listed: 20, greeted: 20, failed: 0, invalid: 0, ms: "ms" });
    for (const name of names(20)) assert.equal(kube.status(name)?.["team"], "blue", name);
  });

  it("never has more than `concurrency` Members in flight, and uses them all", async () => {
    const { seen, wrap } = measured();
    const { kube, resync, say } = setup({ pageSize: 7, concurrency: 3, converge: wrap });
    for (const name of names(20)) kube.add(name, { team: "blue" });
    await resync(say);
    assert.equal(seen.max, 3);
    assert.equal(seen.inFlight, 0);
  });

  it("a short last page runs no more workers than it has Members", async () => {
    const { seen, wrap } = measured();
    const { kube, resync, say } = setup({ pageSize: 10, concurrency: 8, converge: wrap });
    for (const name of names(12)) kube.add(name);
    await resync(say);
    assert.equal(seen.max, 8);
    assert.equal(seen.started.length, 12);
  });

  it("defaults: pages of 500, 8 at a time", async () => {
    const { seen, wrap } = measured();
    const { kube, resync, say } = setup({ converge: wrap });
    for (const name of names(20)) kube.add(name);
    await resync(say);
    assert.deepEqual(
      kube.pages.map((p) => p.limit),
      [500],
    );
    assert.equal(seen.max, 8);
  });

  it("counts what it listed, greeted and skipped, and logs it once", async () => {
    const { kube, resync, said, say, logs } = setup({ namespace: "team-ns", pageSize: 2 });
    kube.add("in-step", { namespace: "team-ns", team: "blue", status: { team: "blue" } });
    kube.add("new", { namespace: "team-ns", team: "blue" });
    kube.add("moved", { namespace: "team-ns", team: "red", status: { team: "blue" } });
    kube.create({ kind: "Member", metadata: { name: "odd", namespace: "team-ns" }, spec: { memberOf: 5 } });
    kube.add("elsewhere", { namespace: "default" });
    const summary = await resync(say);
    assert.deepEqual(withoutMs({ ...summary }), { listed: 4, greeted: 2, failed: 0, invalid: 1, ms: "ms" });
    assert.deepEqual(said.sort(), ["moved moved from the team blue to the team red", "welcome new to the team blue"]);
    assert.equal(kube.status("elsewhere"), undefined);
    assert.deepEqual(
      logs()
        .filter((l) => l.level !== "debug")
        .map(withoutMs),
      [
        { level: "warn", msg: "resync skips an invalid Member: data.spec.memberOf must be a string, got number", namespace: "team-ns", ms: undefined },
        { level: "info", msg: "resync done", namespace: "team-ns", listed: 4, greeted: 2, failed: 0, invalid: 1, ms: "ms" },
      ],
    );
  });

  it("an empty namespace: one list, nothing else", async () => {
    const { kube, resync, say } = setup();
    assert.deepEqual(withoutMs({ ...(await resync(say)) }), { listed: 0, greeted: 0, failed: 0, invalid: 0, ms: "ms" });
    assert.equal(kube.calls.listMembers, 1);
    assert.equal(kube.calls.patchMemberStatus, 0);
  });

  it("gives each Member its own deadline", async () => {
    const signals: AbortSignal[] = [];
    const kube = new MemoryKube();
    kube.add("a");
    kube.add("b");
    const { logger } = captureLogs();
    const resync = createResync({
      api: async () => kube,
      namespace: async () => "default",
      converge: async (_start: Member | MemberRef, signal: AbortSignal) => void signals.push(signal),
      logger,
      memberTimeoutMs: 20,
    });
    await resync(() => undefined);
    assert.equal(signals.length, 2);
    assert.notEqual(signals[0], signals[1]);
    assert.deepEqual(
      signals.map((s) => s.aborted),
      [false, false],
    );
    await delay(60);
    assert.deepEqual(
      signals.map((s) => s.aborted),
      [false, false],
      "each deadline ends with its Member: no timer left to fire later",
    );
  });

  it("aborts a Member whose convergence does not finish at its deadline, and goes on with the next", async () => {
    const kube = new MemoryKube();
    kube.add("a");
    kube.add("b");
    const { logger, logs } = captureLogs();
    const seen: string[] = [];
    const resync = createResync({
      api: async () => kube,
      namespace: async () => "default",
      converge: (start: Member | MemberRef, signal: AbortSignal) => {
        seen.push(start.name);
        return new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true }));
      },
      logger,
      memberTimeoutMs: 20,
    });
    await assert.rejects(
      resync(() => undefined),
      { name: "KubeError", message: /2 of 2 members could not be converged now/ },
    );
    assert.deepEqual(seen.sort(), ["a", "b"]);
    assert.equal(logs().filter((l) => l.level === "warn" && String(l.msg).includes("the deadline of 20 ms passed")).length, 2);
  });
});

describe("resync: Events a crash left owed", () => {
  it("writes each owed Event through the convergence, before a new claim, and the new claim's Event too; only new greetings are said and counted", async () => {
    const { kube, resync, said, say } = setup();
    const owed = (name: string) => ({
      team: "blue",
      greeting: `welcome ${name} to the team blue`,
      greetedAt: "2026-11-25T09:00:00.000Z",
      pendingEvent: { name: `${name}.0123456789abcdef`, reason: "Welcomed" },
    });
    kube.add("a", { team: "blue", status: owed("a") });
    kube.add("b", { team: "red", status: owed("b") });
    kube.add("c", { team: "blue", status: { team: "blue" } });
    const summary = await resync(say);
    assert.deepEqual(withoutMs({ ...summary }), { listed: 3, greeted: 1, failed: 0, invalid: 0, ms: "ms" });
    assert.deepEqual(said, ["b moved from the team blue to the team red"], "only b's team change is a greeting");
    assert.deepEqual(
      kube.events().map((e) => [e.name, e.reason, e.message]),
      [
        ["a.0123456789abcdef", "Welcomed", "welcome a to the team blue"],
        ["b.0123456789abcdef", "Welcomed", "welcome b to the team blue"],
        [eventNameOf(kube, "b"), "TeamChanged", "b moved from the team blue to the team red"],
      ],
    );
    assert.equal(kube.status("a")?.["pendingEvent"], undefined);
    // The resync writes the Events of its own claims before it ends: nothing is left owed.
    assert.equal(kube.status("b")?.["pendingEvent"], undefined);
    assert.equal(kube.calls.createEvent, 3);
  });
});

/** The name of the last Event written about a Member. */
function eventNameOf(kube: MemoryKube, member: string): string {
  return (
    kube
      .events()
      .filter((e) => e.member.name === member)
      .at(-1)?.name ?? ""
  );
}

describe("resync: failures", () => {
  it("converges the others, then throws unavailable naming how many failed", async () => {
    const { kube, resync, said, say, logs } = setup({ pageSize: 2, concurrency: 2 });
    for (const name of ["a", "b", "c", "d", "e"]) kube.add(name, { team: "blue" });
    kube.before(
      "patchMemberStatus",
      (_k, ref) => {
        if (ref.name === "b" || ref.name === "d") throw new KubeError("unavailable", `${ref.name}: API server answered 503`);
      },
      100,
    );
    await assert.rejects(
      resync(say),
      (err: unknown) => err instanceof KubeError && err.kind === "unavailable" && err.message === "resync: 2 of 5 members could not be converged now",
    );
    assert.deepEqual(said.sort(), ["welcome a to the team blue", "welcome c to the team blue", "welcome e to the team blue"]);
    assert.equal(kube.status("b"), undefined);
    assert.equal(kube.status("e")?.["team"], "blue", "the page after a failure is still converged");
    assert.deepEqual(
      logs()
        .filter((l) => l.level !== "debug")
        .map(withoutMs),
      [
        { level: "warn", msg: "resync could not converge the member: b: API server answered 503", member: "b", namespace: "default", ms: undefined },
        { level: "warn", msg: "resync could not converge the member: d: API server answered 503", member: "d", namespace: "default", ms: undefined },
        { level: "info", msg: "resync done", namespace: "default", listed: 5, greeted: 3, failed: 2, invalid: 0, ms: "ms" },
      ],
    );
  });

  it("a failed list fails the resync, and the next tick starts afresh", async () => {
    const { kube, resync, say } = setup({ pageSize: 1 });
    kube.add("a");
    kube.add("b");
    kube.failNext("listMembers", "unavailable");
    await assert.rejects(resync(say), (err: unknown) => err instanceof KubeError && err.kind === "unavailable");
    const summary = await resync(say);
    assert.equal(summary.greeted, 2);
    assert.equal(kube.calls.listMembers, 3);
  });
});

describe("resync: one at a time", () => {
  it("a tick that arrives while one runs joins it", async () => {
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { seen, wrap } = measured(() => gate);
    const { kube, resync, said, say } = setup({ converge: wrap });
    kube.add("a");
    kube.add("b");
    const second: string[] = [];
    const first = resync(say);
    const joined = resync((c) => void second.push(c.greeting.text));
    await delay(5);
    assert.equal(kube.calls.listMembers, 1);
    release();
    const [one, two] = await Promise.all([first, joined]);
    assert.equal(one, two, "the same summary");
    assert.equal(seen.started.length, 2, "each Member converged once");
    assert.deepEqual(said.sort(), ["welcome a", "welcome b"]);
    assert.deepEqual(second, [], "greetings are said once, by the resync that runs");
  });

  it("the next tick after one finished runs again", async () => {
    const { kube, resync, say } = setup();
    kube.add("a");
    await resync(say);
    await resync(say);
    assert.equal(kube.calls.listMembers, 2);
  });

  it("a tick that joins a failing resync fails with it, and the one after runs again", async () => {
    const { kube, resync, say } = setup();
    kube.add("a");
    kube.before("listMembers", () => delay(5));
    kube.failNext("listMembers", "unavailable");
    const results = await Promise.allSettled([resync(say), resync(say)]);
    assert.deepEqual(
      results.map((r) => r.status),
      ["rejected", "rejected"],
    );
    assert.equal(kube.calls.listMembers, 1);
    assert.equal((await resync(say)).greeted, 1);
  });
});
