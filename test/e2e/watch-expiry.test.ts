// End to end: our stand-in source (source/watch-members.ts, Resource mode)
// loses no change and doubles none when its watches end, on a real
// kube-apiserver started with --min-request-timeout=5, so that it ends every
// watch after 5-10 s instead of 30-60 min.
//
// 1. Members are created, moved and deleted continuously (48 changes over
//    about 28 s, several watch expiries): each change is sent by the stand-in
//    exactly once (by resourceVersion), greeted exactly once by the function
//    (`node .`), and recorded by exactly one Kubernetes Event. The stand-in
//    resumed each expired watch and never listed again.
//    Then the stand-in is frozen (SIGSTOP) until the API server has ended its
//    watch, a Member is created, one moved and one deleted, and it is thawed:
//    the resumed watch delivers all three (the old stand-in listed afresh and
//    lost them).
// 2. On a second API server without its watch cache and compacting etcd every
//    second, the stand-in is frozen (SIGSTOP) until its watch has ended, Members
//    change meanwhile, etcd is compacted past the stand-in's resourceVersion,
//    and it is thawed: its resumed watch gets 410 Gone, it lists again, and the
//    list's difference (a Member born, one moved, one gone) is greeted once each.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { isMap } from "../support/kube.ts";
import { NAMESPACE, setUpCluster } from "./cluster.ts";
import { waitFor, type ControlPlane, type Proc } from "./control-plane.ts";
import { field, type Obj } from "./members.ts";
import { startGreeter, startWatchMembers, type GreeterProcess, type LogLine } from "./workloads.ts";

const WATCH_TIMEOUT_S = 5;
const MEMBERS_PATH = `/apis/helloworld.apimeister.com/v1/namespaces/${NAMESPACE}/members`;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Rig {
  readonly cp: ControlPlane;
  readonly greeter: GreeterProcess;
  readonly source: Proc;
}

/** The control plane with extra kube-apiserver flags, config/'s CRD and RBAC, the function and the stand-in (Resource mode). */
async function startRig(apiserverArgs: readonly string[]): Promise<Rig> {
  const { cp, greeterKubeconfig, sourceKubeconfig } = await setUpCluster({ apiserverArgs });
  try {
    const greeter = await startGreeter(cp, "greeter", { KUBECONFIG: greeterKubeconfig });
    const source = await startWatchMembers(cp, { kubeconfig: sourceKubeconfig, sink: greeter.url, mode: "Resource" });
    return { cp, greeter, source };
  } catch (err) {
    await cp.stop();
    throw err;
  }
}

/** SIGSTOP or SIGCONT to one process of ours; never to a pid that is not (-1 would mean every process). */
function signal(proc: Proc, name: "SIGSTOP" | "SIGCONT"): void {
  if (proc.pid <= 0 || !proc.running()) return;
  try {
    process.kill(proc.pid, name);
  } catch {
    // it has exited meanwhile
  }
}

/** One describe with its own control plane; process logs are printed if a test fails. */
function describeRig(title: string, apiserverArgs: readonly string[], body: (rig: () => Rig) => void): void {
  describe(title, { timeout: 240_000 }, () => {
    let rig: Rig | undefined;
    let failed = false;
    before(
      async () => {
        rig = await startRig(apiserverArgs);
      },
      { timeout: 120_000 },
    );
    afterEach((t) => {
      if ((t as unknown as { passed?: boolean }).passed === false) failed = true;
    });
    after(async () => {
      if (rig === undefined) return;
      const { cp, source } = rig;
      if (failed) process.stderr.write(`e2e: a test failed; process logs:\n${cp.diagnostics(40)}\n`);
      // A frozen stand-in would sit out SIGTERM until it is killed.
      signal(source, "SIGCONT");
      await source.stop(5_000);
      const code = await source.exited;
      await cp.stop();
      assert.equal(code, 0, `the stand-in stops cleanly on SIGTERM: ${source.tail()}`);
    });
    body(() => {
      if (rig === undefined) throw new Error("the control plane did not start");
      return rig;
    });
  });
}

// ---------------------------------------------------------------------------
// Members through the API (admin token): quicker than a kubectl process per change.

async function api(cp: ControlPlane, method: string, urlPath: string, body?: unknown, contentType = "application/json"): Promise<Obj> {
  const res = await cp.request(cp.adminKubeconfig, method, urlPath, body === undefined ? undefined : { contentType, text: JSON.stringify(body) });
  if (res.status < 200 || res.status > 299) throw new Error(`${method} ${urlPath}: ${res.status} ${res.body}`);
  const value: unknown = JSON.parse(res.body);
  if (!isMap(value)) throw new Error(`${method} ${urlPath}: not an object`);
  return value;
}

const resourceVersionOf = (object: Obj | undefined): string => String(field(object, "metadata", "resourceVersion"));

async function createMember(cp: ControlPlane, name: string, team: string): Promise<string> {
  const body = { apiVersion: "helloworld.apimeister.com/v1", kind: "Member", metadata: { name, namespace: NAMESPACE }, spec: { memberOf: team } };
  return resourceVersionOf(await api(cp, "POST", MEMBERS_PATH, body));
}

async function moveMember(cp: ControlPlane, name: string, team: string): Promise<string> {
  return resourceVersionOf(await api(cp, "PATCH", `${MEMBERS_PATH}/${name}`, { spec: { memberOf: team } }, "application/merge-patch+json"));
}

async function deleteMember(cp: ControlPlane, name: string): Promise<void> {
  await api(cp, "DELETE", `${MEMBERS_PATH}/${name}`);
}

async function getMember(cp: ControlPlane, name: string): Promise<Obj> {
  return api(cp, "GET", `${MEMBERS_PATH}/${name}`);
}

// ---------------------------------------------------------------------------
// What the logs and the Events say.

function jsonLines(text: string): LogLine[] {
  return text
    .slice(0, text.lastIndexOf("\n") + 1)
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as LogLine);
}

const isGreeting = (line: LogLine): boolean => line.level === "info" && typeof line["reason"] === "string" && typeof line["eventType"] === "string";

interface Change {
  readonly member: string;
  readonly kind: "create" | "move" | "delete";
  /** The greeting it must get, exactly once. */
  readonly greeting: string;
  /** The Event reason that records it. */
  readonly reason: "Welcomed" | "TeamChanged" | "SaidFarewell";
  /** The stand-in's event type for it. */
  readonly eventType: string;
  /** The resourceVersion the write produced (not known for a delete). */
  readonly resourceVersion: string | undefined;
}

const welcome = (member: string, team: string, resourceVersion: string, eventType = "dev.knative.apiserver.resource.add"): Change => ({
  member,
  kind: "create",
  greeting: `welcome ${member} to the team ${team}`,
  reason: "Welcomed",
  eventType,
  resourceVersion,
});
const moved = (member: string, from: string, to: string, resourceVersion: string): Change => ({
  member,
  kind: "move",
  greeting: `${member} moved from the team ${from} to the team ${to}`,
  reason: "TeamChanged",
  eventType: "dev.knative.apiserver.resource.update",
  resourceVersion,
});
const farewell = (member: string): Change => ({
  member,
  kind: "delete",
  greeting: `sad to see you go ${member}`,
  reason: "SaidFarewell",
  eventType: "dev.knative.apiserver.resource.delete",
  resourceVersion: undefined,
});

interface Tally {
  readonly lost: string[];
  readonly duplicated: string[];
  readonly unexpected: string[];
}

const tally = (): Tally => ({ lost: [], duplicated: [], unexpected: [] });

function count<T>(items: readonly T[], key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/** Greetings in the function's log about `members`, against the changes made. */
function tallyGreetings(greeter: GreeterProcess, changes: readonly Change[], members: ReadonlySet<string>): Tally {
  const said = greeter.lines().filter((l) => isGreeting(l) && members.has(String(l["member"])));
  const counts = count(said, (l) => l.msg);
  const result = tally();
  for (const change of changes) {
    const n = counts.get(change.greeting) ?? 0;
    if (n === 0) result.lost.push(change.greeting);
    if (n > 1) result.duplicated.push(`${change.greeting} (${n}x)`);
  }
  const expected = new Set(changes.map((c) => c.greeting));
  for (const line of said) if (!expected.has(line.msg)) result.unexpected.push(line.msg);
  return result;
}

/** The stand-in's "event sent" lines, against the changes made: each write sent once (deletes by member). */
function tallySent(source: Proc, changes: readonly Change[]): Tally {
  const sent = jsonLines(source.stdout()).filter((l) => l.msg === "event sent");
  const key = (member: unknown, eventType: unknown, resourceVersion: unknown): string =>
    `${String(eventType).split(".").pop()} ${String(member)}@${String(resourceVersion)}`;
  const byVersion = count(sent, (l) => key(l["member"], l["eventType"], l["resourceVersion"]));
  const deletes = count(
    sent.filter((l) => String(l["eventType"]).endsWith(".delete")),
    (l) => String(l["member"]),
  );
  const result = tally();
  const doubled = new Set<string>();
  for (const change of changes) {
    const what = change.kind === "delete" ? `delete ${change.member}` : key(change.member, change.eventType, change.resourceVersion);
    const n = change.kind === "delete" ? (deletes.get(change.member) ?? 0) : (byVersion.get(what) ?? 0);
    if (n === 0) result.lost.push(what);
    if (n > 1) doubled.add(`${what} (${n}x)`);
  }
  // Updates the function's own status writes cause are sent too; none may be sent twice either.
  for (const [what, n] of byVersion) if (n > 1) doubled.add(`${what} (${n}x)`);
  result.duplicated.push(...doubled);
  return result;
}

/** Waits until every change has its Event, then counts them: one Event per change. */
async function tallyEvents(cp: ControlPlane, changes: readonly Change[]): Promise<Tally> {
  const wanted = count(changes, (c) => `${c.member} ${c.reason}`);
  const list = async (): Promise<Map<string, number>> => {
    const events = await cp.kubectlJson(["get", "events", "-n", NAMESPACE]);
    const items = field(isMap(events) ? events : undefined, "items");
    // No controller runs here: every Event in the namespace is the function's.
    return count(Array.isArray(items) ? items.filter(isMap) : [], (e) => `${String(field(e, "involvedObject", "name"))} ${String(field(e, "reason"))}`);
  };
  // Events are written after the greeting, off the reply path: give them time to arrive.
  let seen = new Map<string, number>();
  try {
    await waitFor(
      "an Event for every change",
      async () => {
        seen = await list();
        return [...wanted.keys()].every((k) => (seen.get(k) ?? 0) >= 1);
      },
      { timeoutMs: 20_000, intervalMs: 500 },
    );
  } catch {
    // counted as lost below
  }
  const result = tally();
  for (const [what, n] of wanted) {
    const got = seen.get(what) ?? 0;
    if (got < n) result.lost.push(what);
    if (got > n) result.duplicated.push(`${what} (${got}x)`);
  }
  return result;
}

function assertNone(what: string, result: Tally): void {
  assert.deepEqual(
    { lost: result.lost, duplicated: result.duplicated, unexpected: result.unexpected },
    { lost: [], duplicated: [], unexpected: [] },
    `${what}: lost ${result.lost.length}, duplicated ${result.duplicated.length}, unexpected ${result.unexpected.length}`,
  );
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Waits for a greeting; one that does not come is counted as lost afterwards rather than failing here. */
async function awaitGreeting(greeter: GreeterProcess, change: Change | undefined): Promise<void> {
  await greeter.waitForLog(change?.greeting ?? "", 0, undefined, 10_000).catch(() => undefined);
}

/**
 * Sends a last Member through and waits for its welcome: the stand-in sends in
 * order, so everything before it has been answered. A marker that never comes
 * is counted as lost with the rest.
 */
async function drain(rig: Rig, name: string): Promise<Change> {
  const resourceVersion = await createMember(rig.cp, name, "marker");
  const change = welcome(name, "marker", resourceVersion);
  await rig.greeter.waitForLog(change.greeting, 0, undefined, 15_000).catch(() => undefined);
  return change;
}

interface Gap {
  /** Every change of the scenario, the marker's welcome last. */
  readonly all: readonly Change[];
  readonly members: ReadonlySet<string>;
  /** The stand-in's log from the moment it was frozen. */
  readonly sinceFreeze: readonly LogLine[];
}

/**
 * Three Members (`p`-gone, `p`-moved, `p`-stays) are greeted and seen by the
 * stand-in; the stand-in is frozen (SIGSTOP) until the API server has ended its
 * watch; meanwhile `p`-born is created, `p`-moved moves, `p`-gone is deleted,
 * and `meanwhile` runs; then the stand-in is thawed and must bring all of it
 * to the function. `caughtUp` recognises the stand-in's log line that shows it
 * has taken in the gap (resumed, or re-listed).
 */
async function changesBetweenWatches(
  rig: Rig,
  p: string,
  bornBy: "add" | "update",
  meanwhile: (known: string) => Promise<void>,
  caughtUp: (line: LogLine) => boolean,
): Promise<Gap> {
  const { cp, greeter, source } = rig;
  const first: Change[] = [
    welcome(`${p}-gone`, "blue", await createMember(cp, `${p}-gone`, "blue")),
    welcome(`${p}-moved`, "blue", await createMember(cp, `${p}-moved`, "blue")),
    welcome(`${p}-stays`, "green", await createMember(cp, `${p}-stays`, "green")),
  ];
  for (const change of first) await greeter.waitForLog(change.greeting, 0);
  // What the stand-in knows before it is frozen: the greeted Members, status included.
  for (const change of first) {
    const version = resourceVersionOf(await getMember(cp, change.member));
    await waitFor(
      `the stand-in to see ${change.member}@${version}`,
      () => jsonLines(source.stdout()).some((l) => l.msg === "event sent" && l["member"] === change.member && l["resourceVersion"] === version),
      { timeoutMs: 10_000 },
    );
  }
  const frozenAt = jsonLines(source.stdout()).length;
  // At least as new as anything the stand-in has seen.
  const known = resourceVersionOf(await api(cp, "GET", MEMBERS_PATH));

  assert.ok(source.pid > 0 && source.running(), source.tail());
  signal(source, "SIGSTOP");
  const gap: Change[] = [];
  try {
    // The API server ends the frozen stand-in's watch at its timeout.
    await waitFor("the frozen stand-in's watch to end", async () => (await cp.openWatches("members")) === 0, {
      timeoutMs: 4 * WATCH_TIMEOUT_S * 1000,
      intervalMs: 250,
    });
    gap.push(welcome(`${p}-born`, "yellow", await createMember(cp, `${p}-born`, "yellow"), `dev.knative.apiserver.resource.${bornBy}`));
    gap.push(moved(`${p}-moved`, "blue", "red", await moveMember(cp, `${p}-moved`, "red")));
    await deleteMember(cp, `${p}-gone`);
    gap.push(farewell(`${p}-gone`));
    await meanwhile(known);
  } finally {
    signal(source, "SIGCONT");
  }
  // The marker must come after what the stand-in catches up with: a Member
  // created before a re-list would be in it, sent before the list's deletes.
  await waitFor("the stand-in to catch up after the thaw", () => jsonLines(source.stdout()).slice(frozenAt).some(caughtUp), {
    timeoutMs: 15_000,
  }).catch(() => undefined);
  const marker = await drain(rig, `${p}-marker`);
  const all = [...first, ...gap, marker];
  return { all, members: new Set(all.map((c) => c.member)), sinceFreeze: jsonLines(source.stdout()).slice(frozenAt) };
}

/** Counts and checks a gap scenario: every change greeted, recorded and sent exactly once. */
async function checkGap(rig: Rig, title: string, gap: Gap, extra: string): Promise<void> {
  const greetings = tallyGreetings(rig.greeter, gap.all, gap.members);
  const sent = tallySent(rig.source, gap.all);
  const events = await tallyEvents(rig.cp, gap.all);
  process.stderr.write(
    `e2e watch-expiry, ${title}: ${extra}; greetings lost ${greetings.lost.length} duplicated ${greetings.duplicated.length}, ` +
      `Events lost ${events.lost.length} duplicated ${events.duplicated.length}, ` +
      `events sent lost ${sent.lost.length} duplicated ${sent.duplicated.length}\n`,
  );
  assertNone("greetings in the function's log", greetings);
  assertNone("Kubernetes Events", events);
  assertNone("events the stand-in sent", sent);
  assert.deepEqual(
    rig.greeter.lines().filter((l) => l.msg === "resync done"),
    [],
  );
}

// ---------------------------------------------------------------------------

describeRig(`watches that expire every ${WATCH_TIMEOUT_S}-${2 * WATCH_TIMEOUT_S} s`, [`--min-request-timeout=${WATCH_TIMEOUT_S}`], (rig) => {
  const LANES = 4;
  const MEMBERS_PER_LANE = 3;
  const TEAMS = ["blue", "red", "green", "yellow"] as const;
  /** Each lane changes one of its Members every LANE_PACE_MS, the lanes offset by a quarter of it. */
  const LANE_PACE_MS = 2_400;

  it(`greets ${LANES * MEMBERS_PER_LANE * 4} changes exactly once across watch expiries, each watch resumed, none re-listed`, async () => {
    const { cp, greeter, source } = rig();
    const changes: Change[] = [];
    const members = new Set<string>();
    const started = Date.now();

    // A lane runs its Members one after another: create, move twice, delete, each
    // change only once the previous one is greeted, so that what each change must
    // be greeted with is known. The lanes interleave, so changes never stop.
    const lane = async (l: number): Promise<void> => {
      let step = 0;
      const next = async (): Promise<void> => {
        const due = started + (l * LANE_PACE_MS) / LANES + step * LANE_PACE_MS;
        step++;
        await sleep(Math.max(0, due - Date.now()));
      };
      for (let m = 0; m < MEMBERS_PER_LANE; m++) {
        const name = `e${l}-${m}`;
        members.add(name);
        const teams = [TEAMS[(l + m) % TEAMS.length], TEAMS[(l + m + 1) % TEAMS.length], TEAMS[(l + m + 2) % TEAMS.length]].map(String);
        const [first = "", second = "", third = ""] = teams;
        const made: Change[] = [];
        await next();
        made.push(welcome(name, first, await createMember(cp, name, first)));
        await awaitGreeting(greeter, made.at(-1));
        await next();
        made.push(moved(name, first, second, await moveMember(cp, name, second)));
        await awaitGreeting(greeter, made.at(-1));
        await next();
        made.push(moved(name, second, third, await moveMember(cp, name, third)));
        await awaitGreeting(greeter, made.at(-1));
        await next();
        await deleteMember(cp, name);
        made.push(farewell(name));
        await awaitGreeting(greeter, made.at(-1));
        changes.push(...made);
      }
    };
    await Promise.all(Array.from({ length: LANES }, (_, l) => lane(l)));
    const windowEnd = Date.now();
    const marker = await drain(rig(), "e-marker");
    members.add(marker.member);
    const all = [...changes, marker];

    // At least three expiries over the stand-in's life (the last may come after the changes).
    const resumed = (): LogLine[] => jsonLines(source.stdout()).filter((l) => l.msg === "watch ended; resuming" && l["reason"] === "closed by the server");
    await waitFor("a third watch expiry", () => resumed().length >= 3, { timeoutMs: 2 * WATCH_TIMEOUT_S * 1000 + 5_000, intervalMs: 250 });
    const inWindow = resumed().filter((l) => {
      const at = Date.parse(String(l["time"]));
      return at >= started && at <= windowEnd;
    });

    const greetings = tallyGreetings(greeter, all, members);
    const sent = tallySent(source, all);
    const events = await tallyEvents(cp, all);
    const sourceLog = jsonLines(source.stdout());
    process.stderr.write(
      `e2e watch-expiry: ${changes.length} changes in ${seconds(windowEnd - started)}; watch expiries resumed ${resumed().length} (${inWindow.length} while Members changed), ` +
        `re-lists ${sourceLog.filter((l) => l.msg === "re-listed members").length}; ` +
        `greetings lost ${greetings.lost.length} duplicated ${greetings.duplicated.length}, ` +
        `Events lost ${events.lost.length} duplicated ${events.duplicated.length}, ` +
        `events sent lost ${sent.lost.length} duplicated ${sent.duplicated.length}\n`,
    );
    assert.equal(changes.length, LANES * MEMBERS_PER_LANE * 4);
    assertNone("greetings in the function's log", greetings);
    assertNone("Kubernetes Events", events);
    assertNone("events the stand-in sent", sent);
    assert.ok(inWindow.length >= 2, `watches expired while Members changed: ${inWindow.length}`);
    assert.deepEqual(
      sourceLog.filter((l) => l.msg === "re-listed members" || l.msg.startsWith("watch expired")),
      [],
      "no watch expired for good, nothing was listed again",
    );
    assert.equal(sourceLog.filter((l) => l.msg === "listed members").length, 1, "listed once, at the start");
    assert.deepEqual(
      sourceLog.filter((l) => l.level === "warn" || l.level === "error"),
      [],
    );
    // Nothing was converged behind the events' back.
    assert.deepEqual(
      greeter.lines().filter((l) => l.msg === "resync done"),
      [],
    );
  });

  it("changes made while no watch is open are delivered by the resumed watch, without a re-list", async () => {
    const gap = await changesBetweenWatches(
      rig(),
      "h",
      "add",
      async () => undefined,
      (l) => l.msg === "watch ended; resuming",
    );
    const resumed = gap.sinceFreeze.filter((l) => l.msg === "watch ended; resuming");
    await checkGap(rig(), "between two watches", gap, `${resumed.length} watch(es) resumed after the thaw`);
    assert.ok(resumed.length >= 1);
    const log = jsonLines(rig().source.stdout());
    assert.deepEqual(
      log.filter((l) => l.msg === "re-listed members" || l.msg.startsWith("watch expired")),
      [],
    );
    assert.equal(log.filter((l) => l.msg === "listed members").length, 1);
  });
});

describeRig(
  "a watch resumed from a compacted resourceVersion (410 Gone)",
  [
    `--min-request-timeout=${WATCH_TIMEOUT_S}`,
    // Watches are served from etcd itself, which answers a compacted version with 410;
    // the watch cache would still serve it from memory.
    "--watch-cache=false",
    // The API server compacts etcd every second, up to the revision of the second before.
    "--etcd-compaction-interval=1s",
  ],
  (rig) => {
    it("lists again and converges: a Member born, one moved and one gone meanwhile are greeted once each", async () => {
      const { cp } = rig();
      const gap = await changesBetweenWatches(
        rig(),
        "g",
        "update",
        async (known) => {
          // Until a watch from what the stand-in knows is refused as too old.
          await waitFor(
            "etcd to be compacted past the stand-in's resourceVersion",
            async () => {
              const answer = await cp.adminGet(`${MEMBERS_PATH}?watch=1&resourceVersion=${known}&timeoutSeconds=1`);
              return answer.body.includes('"type":"ERROR"') && answer.body.includes('"code":410');
            },
            { timeoutMs: 20_000, intervalMs: 500 },
          );
        },
        (l) => l.msg === "re-listed members" && String(l["queued"]).includes("delete g-gone"),
      );
      const expired = gap.sinceFreeze.filter((l) => l.msg === "watch expired (410 Gone); listing again");
      // Usually one re-list; another one may come first if the stand-in was frozen in the middle of one.
      const relisted = gap.sinceFreeze
        .filter((l) => l.msg === "re-listed members")
        .flatMap((l) =>
          String(l["queued"])
            .split(", ")
            .filter((s) => s !== ""),
        );
      await checkGap(rig(), "410", gap, `${expired.length} watch(es) refused with 410 after the thaw, re-lists queued [${relisted.join(", ")}]`);
      assert.ok(expired.length >= 1, `the resumed watch was refused with 410: ${JSON.stringify(gap.sinceFreeze.slice(0, 10))}`);
      // The difference: g-born and g-moved updated, g-gone deleted, g-stays unchanged and not sent
      // (each of them exactly once, by resourceVersion, is checked by checkGap).
      assert.deepEqual(
        relisted.filter((s) => s.startsWith("delete ")),
        ["delete g-gone"],
      );
      assert.ok(relisted.includes("update g-born") && relisted.includes("update g-moved"), relisted.join(", "));
      assert.ok(!relisted.some((s) => s.endsWith(" g-stays")), relisted.join(", "));
    });
  },
);
