// Harness pieces for the fault-injection suite (faults.test.ts): the function
// on a fixed port that can be SIGKILLed and started again (K_SINK and a
// PingSource keep pointing at one address, as a Knative Service's would), a
// kube-apiserver restart with the very same flags, the PingSource resync event,
// Members written straight through the API (fast enough for a burst, retried
// across an outage), and a per-Member count of greetings, from the function's
// log lines and from the core Events, against what should have been said.
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { isMap } from "../support/kube.ts";
import { childEnv, repoRoot, waitFor, type ControlPlane, type Proc } from "./control-plane.ts";
import { NAMESPACE } from "./cluster.ts";
import { parseLines, type LogLine } from "./workloads.ts";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------
// The function, on one port for its whole life

export type LogRecord = LogLine;
export const parseLog = parseLines;

export interface FunctionRuns {
  readonly name: string;
  readonly port: number;
  /** http://127.0.0.1:PORT, the same for every run. */
  readonly url: string;
  /** Every process started so far, oldest first. */
  procs(): readonly Proc[];
  running(): boolean;
  /** Starts `node .` on the port; resolves once /healthz answers. */
  start(): Promise<Proc>;
  /** SIGKILL: no shutdown, no flush, what a node failure or the OOM killer does. */
  kill(): Promise<void>;
  /** The first line of the running process that matches, as soon as it is out (polled every millisecond). */
  whenLogged(match: (line: LogRecord) => boolean, timeoutMs: number): Promise<LogRecord>;
  /** SIGTERM, the function's graceful shutdown. */
  stop(): Promise<void>;
  /** The log records of every run, in order. */
  lines(): LogRecord[];
  /** The last lines of every run, for failure messages. */
  tail(lines?: number): string;
}

export function functionRuns(cp: ControlPlane, name: string, port: number, env: Readonly<Record<string, string>>): FunctionRuns {
  const mainField: unknown = (JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { main?: unknown }).main;
  const main = typeof mainField === "string" ? path.join(repoRoot, mainField) : "";
  if (!existsSync(main)) throw new Error("the function is not built: run npm run build first");
  const url = `http://127.0.0.1:${port}`;
  const procs: Proc[] = [];
  const current = (): Proc | undefined => {
    const last = procs.at(-1);
    return last?.running() === true ? last : undefined;
  };
  return {
    name,
    port,
    url,
    procs: () => procs,
    running: () => current() !== undefined,
    async start() {
      if (current() !== undefined) throw new Error(`${name} is already running`);
      const proc = cp.spawn(
        `${name}-${procs.length + 1}`,
        process.execPath,
        [main],
        childEnv({ HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "debug", ...env }),
      );
      procs.push(proc);
      await waitFor(
        `${proc.name} /healthz on port ${port}`,
        async () => {
          if (!proc.running()) throw new Error(`${proc.name} exited: ${proc.tail()}`);
          return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) })).status === 200;
        },
        { timeoutMs: 20_000, detail: () => proc.tail() },
      );
      return proc;
    },
    async kill() {
      const proc = current();
      if (proc === undefined) throw new Error(`${name} is not running`);
      process.kill(proc.pid, "SIGKILL");
      await proc.exited;
    },
    async whenLogged(match, timeoutMs) {
      const proc = current();
      if (proc === undefined) throw new Error(`${name} is not running`);
      const deadline = Date.now() + timeoutMs;
      let seen = 0;
      for (;;) {
        const out = proc.stdout();
        const complete = out.lastIndexOf("\n") + 1;
        if (complete < seen) seen = 0; // the kept output was trimmed at its start
        const found = complete > seen ? parseLog(out.slice(seen, complete), proc.name).find(match) : undefined;
        seen = Math.max(seen, complete);
        if (found !== undefined) return found;
        if (!proc.running()) throw new Error(`${proc.name} exited before logging a matching line`);
        if (Date.now() > deadline) throw new Error(`${proc.name} logged no matching line within ${timeoutMs} ms`);
        await sleep(1);
      }
    },
    async stop() {
      await current()?.stop(10_000);
    },
    lines: () => procs.flatMap((proc) => parseLog(proc.stdout(), proc.name)),
    tail: (lines = 15) => procs.map((proc) => `--- ${proc.name} (${proc.running() ? "running" : "exited"}):\n${proc.tail(lines)}`).join("\n"),
  };
}

// ---------------------------------------------------------------------------
// kube-apiserver: killed and started again exactly as it ran

interface ChildProcessInfo {
  readonly pid: number;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** This process's children running `binary` (Linux /proc; setpriv execs, so the pid is the binary's). */
function childrenRunning(binary: string): ChildProcessInfo[] {
  const found: ChildProcessInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // "pid (comm) state ppid …": comm may hold spaces and parentheses.
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(ppid) !== process.pid || state === "Z") continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8")
        .split("\0")
        .filter((arg) => arg !== "");
      if (argv[0] === undefined || path.basename(argv[0]) !== binary) continue;
      const env: Record<string, string> = {};
      for (const pair of readFileSync(`/proc/${entry}/environ`, "utf8").split("\0")) {
        const eq = pair.indexOf("=");
        if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      found.push({ pid: Number(entry), argv, env });
    } catch {
      // exited while we looked
    }
  }
  return found;
}

function isGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

export interface ApiserverRestart {
  /** The new kube-apiserver, a workload of `cp` from now on (so stopped before etcd). */
  readonly proc: Proc;
  readonly args: readonly string[];
  /** From SIGKILL to /readyz answering 200 again. */
  readonly outageMs: number;
  /** Wall clock (ms since the epoch) of the SIGKILL and of the first /readyz 200, to match log lines against. */
  readonly killedAt: number;
  readonly readyAt: number;
}

/**
 * SIGKILLs the kube-apiserver serving `cp.url`, waits `downMs`, and starts it
 * again with the same binary, flags (so the same port, etcd, certificates,
 * token file and service-account keys) and environment, read back from /proc
 * so that flags added by control-plane.ts carry over; resolves at /readyz 200.
 */
export async function restartApiserver(cp: ControlPlane, downMs: number, generation = 2): Promise<ApiserverRestart> {
  const port = new URL(cp.url).port;
  const candidates = childrenRunning("kube-apiserver").filter((c) => c.argv.includes(`--secure-port=${port}`));
  const [target, ...others] = candidates;
  if (target === undefined || others.length > 0) throw new Error(`expected one kube-apiserver child on port ${port}, found ${candidates.length}`);
  const [binary, ...args] = target.argv;
  if (binary === undefined) throw new Error("kube-apiserver has an empty command line");
  const killedAt = performance.now();
  const killedAtWall = Date.now();
  process.kill(target.pid, "SIGKILL");
  await waitFor(`kube-apiserver pid ${target.pid} to exit`, () => isGone(target.pid), { timeoutMs: 10_000, intervalMs: 20 });
  await sleep(downMs);
  const proc = cp.spawn(`kube-apiserver-${generation}`, binary, args, target.env);
  await waitFor(
    "the restarted kube-apiserver /readyz",
    async () => {
      if (!proc.running()) throw new Error(`kube-apiserver exited: ${proc.tail()}`);
      return (await cp.adminGet("/readyz")).status === 200;
    },
    { timeoutMs: 90_000, intervalMs: 200, detail: () => proc.tail() },
  );
  return { proc, args, outageMs: performance.now() - killedAt, killedAt: killedAtWall, readyAt: Date.now() };
}

// ---------------------------------------------------------------------------
// The resync: what Knative's PingSource adapter sends

export const PING_SOURCE = `/apis/v1/namespaces/${NAMESPACE}/pingsources/member-greeter-resync`;
export const PING_TYPE = "dev.knative.sources.ping";

export interface ResyncReply {
  readonly status: number;
  readonly body: string;
  readonly ms: number;
}

/**
 * One PingSource event, binary mode, as knative.dev/eventing pkg/adapter/mtping
 * builds it (a fresh UUID per tick, type and source of the PingSource, the
 * configured data and content type); its CloudEvents client also stamps
 * ce-time (ceclient.WithTimeNow), so this does too.
 */
export async function sendResync(url: string, timeoutMs = 120_000): Promise<ResyncReply> {
  const started = performance.now();
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "ce-specversion": "1.0",
      "ce-id": randomUUID(),
      "ce-source": PING_SOURCE,
      "ce-type": PING_TYPE,
      "ce-time": new Date().toISOString(),
      "content-type": "application/json",
    },
    body: JSON.stringify({ resync: "members" }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: await res.text(), ms: performance.now() - started };
}

// ---------------------------------------------------------------------------
// Members through the API (a kubectl process each would make a burst crawl on 2 cores)

export const MEMBERS_PATH = `/apis/helloworld.apimeister.com/v1/namespaces/${NAMESPACE}/members`;
export const SCENARIO_LABEL = "e2e-faults/scenario";

export interface MemberSpec {
  readonly name: string;
  /** undefined: no spec.memberOf at all. */
  readonly team?: string | undefined;
}

function memberBody(spec: MemberSpec, scenario: string): string {
  return JSON.stringify({
    apiVersion: "helloworld.apimeister.com/v1",
    kind: "Member",
    metadata: { name: spec.name, namespace: NAMESPACE, labels: { [SCENARIO_LABEL]: scenario } },
    spec: spec.team === undefined ? {} : { memberOf: spec.team },
  });
}

/**
 * Retries a write until the API server takes it. An outage is a refused
 * connection, 5xx or 429, or a 404 for the resource type itself, which a
 * kube-apiserver that has just started answers until it serves the CRD;
 * anything else is a failure.
 */
async function writeThroughOutage(
  what: string,
  attempt: () => Promise<{ status: number; body: string }>,
  done: (status: number, attempts: number) => boolean,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (let attempts = 1; ; attempts++) {
    let answer: { status: number; body: string } | undefined;
    try {
      answer = await attempt();
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (answer !== undefined) {
      if (done(answer.status, attempts)) return attempts;
      const starting = answer.status === 404 && answer.body.includes("the server could not find the requested resource");
      if (answer.status !== 429 && answer.status < 500 && !starting) throw new Error(`${what}: API server answered ${answer.status}: ${answer.body}`);
      last = `${answer.status} ${answer.body}`;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not done within ${timeoutMs} ms (last: ${last})`);
    await sleep(250);
  }
}

/** Creates a Member (admin token); a 409 after a failed attempt means that attempt landed. Returns the attempts it took. */
export function createMember(cp: ControlPlane, spec: MemberSpec, scenario: string, timeoutMs = 60_000): Promise<number> {
  return writeThroughOutage(
    `create member ${spec.name}`,
    () => cp.request(cp.adminKubeconfig, "POST", MEMBERS_PATH, { contentType: "application/json", text: memberBody(spec, scenario) }),
    (status, attempts) => status === 201 || (status === 409 && attempts > 1),
    timeoutMs,
  );
}

/** Sets spec.memberOf (undefined removes it: "left the team"). */
export function setTeam(cp: ControlPlane, name: string, team: string | undefined, timeoutMs = 30_000): Promise<number> {
  return writeThroughOutage(
    `set the team of member ${name}`,
    () =>
      cp.request(cp.adminKubeconfig, "PATCH", `${MEMBERS_PATH}/${name}`, {
        contentType: "application/merge-patch+json",
        text: JSON.stringify({ spec: { memberOf: team ?? null } }),
      }),
    (status) => status === 200,
    timeoutMs,
  );
}

export function patchMember(cp: ControlPlane, name: string, patch: unknown, timeoutMs = 30_000): Promise<number> {
  return writeThroughOutage(
    `patch member ${name}`,
    () => cp.request(cp.adminKubeconfig, "PATCH", `${MEMBERS_PATH}/${name}`, { contentType: "application/merge-patch+json", text: JSON.stringify(patch) }),
    (status) => status === 200,
    timeoutMs,
  );
}

/** DELETE without waiting: with a finalizer the Member stays, with a deletionTimestamp. */
export function deleteMemberNow(cp: ControlPlane, name: string, timeoutMs = 30_000): Promise<number> {
  return writeThroughOutage(
    `delete member ${name}`,
    () => cp.request(cp.adminKubeconfig, "DELETE", `${MEMBERS_PATH}/${name}`),
    (status, attempts) => status === 200 || status === 202 || (status === 404 && attempts > 1),
    timeoutMs,
  );
}

export interface BurstResult {
  readonly ms: number;
  /** Writes that needed more than one attempt (they met an outage). */
  readonly retried: number;
}

/**
 * Creates the Members one after another at a steady pace (create i is started
 * `i * paceMs` after the first, or as soon as the previous one is done if it
 * took longer), calling `after(i)` once create i has been accepted.
 */
export async function burst(
  cp: ControlPlane,
  specs: readonly MemberSpec[],
  scenario: string,
  paceMs: number,
  after?: (index: number) => void,
): Promise<BurstResult> {
  const started = performance.now();
  let retried = 0;
  for (const [index, spec] of specs.entries()) {
    const wait = started + index * paceMs - performance.now();
    if (wait > 0) await sleep(wait);
    if ((await createMember(cp, spec, scenario)) > 1) retried++;
    after?.(index);
  }
  return { ms: performance.now() - started, retried };
}

export interface MemberState {
  readonly name: string;
  readonly specTeam: string;
  /** undefined: never greeted. */
  readonly statusTeam: string | undefined;
  readonly finalizers: readonly string[];
  readonly deleting: boolean;
}

/** The Members of one scenario as the API server has them now. */
export async function membersOf(cp: ControlPlane, scenario: string): Promise<Map<string, MemberState>> {
  const { status, body } = await cp.request(cp.adminKubeconfig, "GET", `${MEMBERS_PATH}?labelSelector=${encodeURIComponent(`${SCENARIO_LABEL}=${scenario}`)}`);
  if (status !== 200) throw new Error(`list members: ${status} ${body}`);
  const list: unknown = JSON.parse(body);
  const items = isMap(list) && Array.isArray(list["items"]) ? list["items"] : [];
  const members = new Map<string, MemberState>();
  for (const item of items) {
    if (!isMap(item) || !isMap(item["metadata"])) continue;
    const metadata = item["metadata"];
    const name = String(metadata["name"]);
    const spec = isMap(item["spec"]) ? item["spec"] : {};
    const statusTeam = isMap(item["status"]) ? item["status"]["team"] : undefined;
    members.set(name, {
      name,
      specTeam: typeof spec["memberOf"] === "string" ? spec["memberOf"] : "",
      statusTeam: typeof statusTeam === "string" ? statusTeam : undefined,
      finalizers: Array.isArray(metadata["finalizers"]) ? metadata["finalizers"].map(String) : [],
      deleting: typeof metadata["deletionTimestamp"] === "string",
    });
  }
  return members;
}

/** Deletes a scenario's Members (finalizers removed first) with one DELETE of the collection; resolves once they are gone. */
export async function deleteScenarioMembers(cp: ControlPlane, scenario: string): Promise<void> {
  const members = await membersOf(cp, scenario);
  for (const m of members.values()) {
    if (m.finalizers.length > 0) await patchMember(cp, m.name, { metadata: { finalizers: null } });
  }
  if (members.size === 0) return;
  const selector = `labelSelector=${encodeURIComponent(`${SCENARIO_LABEL}=${scenario}`)}`;
  const { status, body } = await cp.request(cp.adminKubeconfig, "DELETE", `${MEMBERS_PATH}?${selector}`);
  if (status !== 200) throw new Error(`delete the members of ${scenario}: ${status} ${body}`);
  await waitFor(`the members of ${scenario} to be gone`, async () => (await membersOf(cp, scenario)).size === 0, { timeoutMs: 60_000, intervalMs: 250 });
}

/** Members whose status.team is not their spec.memberOf (never greeted counts too): "name spec=… status=…". */
export function unconverged(members: ReadonlyMap<string, MemberState>): string[] {
  return [...members.values()]
    .filter((m) => m.statusTeam !== m.specTeam)
    .map((m) => `${m.name} spec=${JSON.stringify(m.specTeam)} status=${JSON.stringify(m.statusTeam ?? null)}`);
}

// ---------------------------------------------------------------------------
// Greetings: what should be said, and what was

export type Reason = "welcome" | "team-change" | "farewell";

export interface Greeting {
  readonly member: string;
  readonly reason: Reason;
  readonly text: string;
}

/** The greeting texts (README), to write down what each scenario expects. */
export const say = {
  welcome: (member: string, team?: string): Greeting => ({
    member,
    reason: "welcome",
    text: team === undefined || team === "" ? `welcome ${member}` : `welcome ${member} to the team ${team}`,
  }),
  moved: (member: string, from: string, to: string): Greeting => ({
    member,
    reason: "team-change",
    text: `${member} moved from the team ${from} to the team ${to}`,
  }),
  left: (member: string, from: string): Greeting => ({ member, reason: "team-change", text: `${member} left the team ${from}` }),
  farewell: (member: string): Greeting => ({ member, reason: "farewell", text: `sad to see you go ${member}` }),
};

const reasons: ReadonlySet<string> = new Set<Reason>(["welcome", "team-change", "farewell"]);
const isReason = (value: unknown): value is Reason => typeof value === "string" && reasons.has(value);

/** Greeting log lines: level info, a known reason, the member named. */
export function greetingsInLog(lines: readonly LogRecord[]): Greeting[] {
  const found: Greeting[] = [];
  for (const line of lines) {
    const reason = line["reason"];
    const member = line["member"];
    if (line.level !== "info" || !isReason(reason) || typeof member !== "string") continue;
    found.push({ member, reason, text: line.msg });
  }
  return found;
}

const eventReasons: Readonly<Record<string, Reason>> = { Welcomed: "welcome", TeamChanged: "team-change", SaidFarewell: "farewell" };

interface EventRecord {
  readonly name: string;
  readonly greeting: Greeting | undefined;
}

async function memberEvents(cp: ControlPlane): Promise<EventRecord[]> {
  const { status, body } = await cp.request(
    cp.adminKubeconfig,
    "GET",
    `/api/v1/namespaces/${NAMESPACE}/events?fieldSelector=${encodeURIComponent("involvedObject.kind=Member")}`,
  );
  if (status !== 200) throw new Error(`list events: ${status} ${body}`);
  const list: unknown = JSON.parse(body);
  const items = isMap(list) && Array.isArray(list["items"]) ? list["items"] : [];
  return items.filter(isMap).map((item) => {
    const name = isMap(item["metadata"]) ? String(item["metadata"]["name"]) : "";
    const reason = eventReasons[String(item["reason"])];
    const member = isMap(item["involvedObject"]) ? item["involvedObject"]["name"] : undefined;
    const greeting =
      reason !== undefined && typeof member === "string" && typeof item["message"] === "string" ? { member, reason, text: item["message"] } : undefined;
    return { name, greeting };
  });
}

/** The Events on Members that exist now: take one before a scenario, so that it counts only its own. */
export async function eventBaseline(cp: ControlPlane): Promise<ReadonlySet<string>> {
  return new Set((await memberEvents(cp)).map((e) => e.name));
}

/** Greeting Events (Welcomed, TeamChanged, SaidFarewell) created since `baseline`. */
export async function greetingEvents(cp: ControlPlane, baseline: ReadonlySet<string>): Promise<Greeting[]> {
  return (await memberEvents(cp)).filter((e) => !baseline.has(e.name)).flatMap((e) => (e.greeting === undefined ? [] : [e.greeting]));
}

export interface Tally {
  /** Members that should have been greeted. */
  readonly members: number;
  readonly expected: number;
  readonly observed: number;
  /** Expected greetings not said. */
  readonly lost: number;
  /** Expected greetings said more than once (the extra times). */
  readonly duplicated: number;
  /** Greetings nobody should have said (a wrong text, an intermediate team, another scenario's Member). */
  readonly unexpected: number;
  /** One line per Member that is off: what was missing, doubled or unexpected. */
  readonly problems: readonly string[];
}

const key = (g: Greeting): string => `${g.member}\u0000${g.reason}\u0000${g.text}`;

export function tally(expected: readonly Greeting[], observed: readonly Greeting[]): Tally {
  const want = new Map<string, number>();
  const got = new Map<string, number>();
  for (const g of expected) want.set(key(g), (want.get(key(g)) ?? 0) + 1);
  for (const g of observed) got.set(key(g), (got.get(key(g)) ?? 0) + 1);
  let lost = 0;
  let duplicated = 0;
  let unexpected = 0;
  const problems = new Map<string, string[]>();
  const note = (k: string, text: string): void => {
    const member = k.split("\u0000")[0] ?? "";
    problems.set(member, [...(problems.get(member) ?? []), text]);
  };
  for (const k of new Set([...want.keys(), ...got.keys()])) {
    const w = want.get(k) ?? 0;
    const g = got.get(k) ?? 0;
    const [, reason, text] = k.split("\u0000");
    if (g < w) {
      lost += w - g;
      note(k, `lost ${w - g}× ${reason} "${text}"`);
    } else if (w === 0) {
      unexpected += g;
      note(k, `unexpected ${g}× ${reason} "${text}"`);
    } else if (g > w) {
      duplicated += g - w;
      note(k, `said ${g}× (once expected) ${reason} "${text}"`);
    }
  }
  return {
    members: new Set(expected.map((g) => g.member)).size,
    expected: expected.length,
    observed: observed.length,
    lost,
    duplicated,
    unexpected,
    problems: [...problems.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([member, texts]) => `${member}: ${texts.join("; ")}`),
  };
}

export interface Count {
  readonly log: Tally;
  readonly events: Tally;
}

/** Greetings in the logs of `functions` and Events since `baseline`, against `expected`. */
export async function count(
  cp: ControlPlane,
  functions: readonly FunctionRuns[],
  baseline: ReadonlySet<string>,
  expected: readonly Greeting[],
): Promise<Count> {
  const said = greetingsInLog(functions.flatMap((f) => f.lines()));
  return { log: tally(expected, said), events: tally(expected, await greetingEvents(cp, baseline)) };
}

/**
 * Waits until nothing expected is missing (bounded: what is still missing
 * then is lost), then `quietMs` more so that a late second greeting is
 * counted too, and counts for the last time.
 */
export async function countWhenSettled(
  cp: ControlPlane,
  functions: readonly FunctionRuns[],
  baseline: ReadonlySet<string>,
  expected: readonly Greeting[],
  options: { readonly timeoutMs?: number; readonly quietMs?: number } = {},
): Promise<Count> {
  const deadline = Date.now() + (options.timeoutMs ?? 45_000);
  for (;;) {
    const now = await count(cp, functions, baseline, expected);
    if ((now.log.lost === 0 && now.events.lost === 0) || Date.now() > deadline) break;
    await sleep(500);
  }
  await sleep(options.quietMs ?? 3_000);
  return count(cp, functions, baseline, expected);
}

export function describeCount(label: string, c: Count, ms: number): string {
  const part = (t: Tally): string => `lost ${t.lost}, duplicated ${t.duplicated}, unexpected ${t.unexpected}`;
  return (
    `${label}: ${c.log.members} members, ${c.log.expected} greetings expected; ` +
    `log lines: ${c.log.observed} said, ${part(c.log)}; Events: ${c.events.observed} created, ${part(c.events)}; ${seconds(ms)}`
  );
}
