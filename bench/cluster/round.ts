// One round of one server on the control plane: spawn it, time the first
// recorded greeting, read its RSS, send it N add events for N fresh Members at
// a fixed concurrency, wait until every claim's Event is written (no mark
// left), then read its RSS and its connections to the API server, and check
// the work: per Member exactly one greeting line, one claim, one Event.
import { firstGreeting, rssBytes, startServer, stopServer, type ServerSpec } from "../proc.ts";
import { field, type AdminApi, type Json } from "./admin-api.ts";
import { addEvent, sendAll } from "./load.ts";
import { connectionsTo, sampleConnections } from "./sockets.ts";

export interface RoundSample {
  readonly coldMs: number;
  readonly rssFirst: number;
  readonly greetingsPerSecond: number;
  readonly rssAfter: number;
  /** ESTABLISHED connections to the API server once every mark was cleared. */
  readonly connections: number;
  /** Most connections seen open at once, and distinct ones seen (sampled: a lower bound). */
  readonly peakConnections: number;
  readonly distinctConnections: number;
  /** Seconds from the last reply until every mark was cleared. */
  readonly backgroundSeconds: number;
  readonly problems: readonly string[];
}

export interface RoundSetting {
  readonly root: string;
  readonly api: AdminApi;
  /** The API server's URL: its port is what connections are counted to; also the events' ce-source. */
  readonly server: string;
  readonly members: number;
  readonly concurrency: number;
  readonly settleMs: number;
  readonly say: (line: string) => void;
}

const TEAM = "bench";
const MiB = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every Member of the batch claimed and its Event written (no mark left); the Members as they are then. */
export async function waitUntilMarksCleared(api: AdminApi, batch: string, timeoutMs: number): Promise<Json[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const members = await api.listMembers(batch);
    if (members.every((m) => field(m, "status", "greeting") !== undefined && field(m, "status", "pendingEvent") === undefined)) return members;
    if (Date.now() > deadline) {
      const left = members.filter((m) => field(m, "status", "pendingEvent") !== undefined || field(m, "status", "greeting") === undefined).length;
      throw new Error(`${left} of ${members.length} Members of ${batch} still unclaimed or owing their Event after ${timeoutMs / 1000} s`);
    }
    await sleep(100);
  }
}

/** Exactly one greeting line, one claim (status) and one Event per Member of the batch. */
function verify(key: string, members: readonly Json[], names: readonly string[], output: string, events: readonly Json[]): string[] {
  const problems: string[] = [];
  const lines = new Map<string, number>();
  for (const text of output.split("\n")) {
    if (!text.includes('"eventType"')) continue;
    const member = (JSON.parse(text) as Record<string, unknown>)["member"];
    if (typeof member === "string") lines.set(member, (lines.get(member) ?? 0) + 1);
  }
  const welcomed = new Map<string, number>();
  for (const event of events) {
    const name = field(event, "involvedObject", "name");
    if (typeof name === "string" && field(event, "reason") === "Welcomed") welcomed.set(name, (welcomed.get(name) ?? 0) + 1);
  }
  const byName = new Map(members.map((m) => [String(field(m, "metadata", "name")), m]));
  const bad = { lines: 0, claims: 0, events: 0 };
  for (const name of names) {
    if (lines.get(name) !== 1) bad.lines++;
    const status = field(byName.get(name), "status");
    if (field(status, "greeting") !== `welcome ${name} to the team ${TEAM}` || field(status, "team") !== TEAM || field(status, "pendingEvent") !== undefined)
      bad.claims++;
    if (welcomed.get(name) !== 1) bad.events++;
  }
  if (bad.lines > 0) problems.push(`${key}: ${bad.lines} Members without exactly one greeting line`);
  if (bad.claims > 0) problems.push(`${key}: ${bad.claims} Members without their claim (status) or with a mark left`);
  if (bad.events > 0) problems.push(`${key}: ${bad.events} Members without exactly one Welcomed Event`);
  return problems;
}

export async function runRound(spec: ServerSpec, round: string, setting: RoundSetting): Promise<RoundSample> {
  const { api, say } = setting;
  const apiPort = Number(new URL(setting.server).port);
  const batch = `r${round}-${spec.key}`;
  const names = Array.from({ length: setting.members }, (_, i) => `${batch}-${String(i).padStart(4, "0")}`);
  const [first] = await api.createMembers([`${batch}-cold`], `${batch}-cold`, TEAM, 1);
  const objects = await api.createMembers(names, batch, TEAM);
  if (first === undefined) throw new Error("the cold-start Member was not created");
  const events = objects.map((o) => addEvent(o, setting.server));
  const problems: string[] = [];

  const running = await startServer(spec, { cwd: setting.root, marker: '"eventType"', keepOutput: true });
  try {
    const { ms: coldMs } = await firstGreeting(running, addEvent(first, setting.server), 30_000);
    await sleep(setting.settleMs);
    const rssFirst = rssBytes(running.pid) ?? Number.NaN;

    const sampler = sampleConnections(running.pid, apiPort);
    const load = await sendAll(running.port, events, setting.concurrency);
    const replied = performance.now();
    const ok = load.statuses.get(200) ?? 0;
    if (ok !== events.length) problems.push(`${spec.key}: ${ok} of ${events.length} replies were 200 (${JSON.stringify(Object.fromEntries(load.statuses))})`);
    if (load.wrongGreeting > 0) problems.push(`${spec.key}: ${load.wrongGreeting} replies with the wrong greeting`);
    const members = await waitUntilMarksCleared(api, batch, 120_000);
    const backgroundSeconds = (performance.now() - replied) / 1000;
    const connections = connectionsTo(running.pid, apiPort).length;
    const rssAfter = rssBytes(running.pid) ?? Number.NaN;
    const seen = sampler.stop();

    await stopServer(running);
    problems.push(...verify(spec.key, members, names, running.output(), await api.listEvents()));
    const sample: RoundSample = {
      coldMs,
      rssFirst,
      greetingsPerSecond: events.length / load.seconds,
      rssAfter,
      connections,
      peakConnections: seen.peak,
      distinctConnections: seen.distinct,
      backgroundSeconds,
      problems,
    };
    say(
      `  round ${round} ${spec.key}: cold ${coldMs.toFixed(1)} ms, RSS ${(rssFirst / MiB).toFixed(1)} MiB; ${sample.greetingsPerSecond.toFixed(0)} greetings/s, ` +
        `marks cleared ${backgroundSeconds.toFixed(2)} s after the last reply; RSS ${(rssAfter / MiB).toFixed(1)} MiB; ` +
        `${connections} connections open (peak ${seen.peak}, ≥ ${seen.distinct} opened)${problems.length > 0 ? `; PROBLEMS: ${problems.join("; ")}` : ""}`,
    );
    return sample;
  } catch (err) {
    throw new Error(`${spec.key} round ${round}: ${err instanceof Error ? err.message : String(err)}\n${running.tail()}`, { cause: err });
  } finally {
    await stopServer(running);
    // Fresh Members per round and server; gone before the next one, so that lists stay short.
    await api.deleteMembers(batch);
    await api.deleteMembers(`${batch}-cold`);
    await api.deleteEvents();
  }
}
