// The cluster bench's events and load: a Resource-mode ApiServerSource add
// event for a Member as the API server created it (its real uid and
// resourceVersion), and a fixed number of them sent at a fixed concurrency on
// keep-alive connections, as Knative's adapter would deliver a backlog.
import { randomUUID } from "node:crypto";
import { Agent, request } from "node:http";
import { memberPath } from "../../functions/member.ts";
import type { TestEvent } from "../event.ts";
import { MEMBER_ADD_TYPE } from "../event.ts";
import { field, type Json } from "./admin-api.ts";

export function addEvent(object: Json, source: string): TestEvent {
  const name = String(field(object, "metadata", "name"));
  const namespace = String(field(object, "metadata", "namespace"));
  const team = field(object, "spec", "memberOf");
  return {
    headers: {
      "ce-specversion": "1.0",
      "ce-id": randomUUID(),
      "ce-source": source,
      "ce-type": MEMBER_ADD_TYPE,
      "ce-subject": memberPath({ name, namespace }),
      "ce-time": new Date().toISOString(),
      "ce-kind": "Member",
      "ce-name": name,
      "ce-namespace": namespace,
      "content-type": "application/json",
    },
    body: JSON.stringify(object),
    greeting: typeof team === "string" && team !== "" ? `welcome ${name} to the team ${team}` : `welcome ${name}`,
  };
}

function postOn(agent: Agent, port: number, event: TestEvent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(event.body);
    const req = request(
      { host: "127.0.0.1", port, method: "POST", path: "/", agent, headers: { ...event.headers, "content-length": String(body.length) }, timeout: 30_000 },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("no answer within 30 s")));
    req.on("error", reject);
    req.end(body);
  });
}

export interface LoadOutcome {
  readonly seconds: number;
  /** Replies by status; errors (no reply) under 0. */
  readonly statuses: ReadonlyMap<number, number>;
  /** Replies that were 200 but did not carry the expected greeting. */
  readonly wrongGreeting: number;
}

/** Sends every event once, `concurrency` at a time; the time from the first send to the last reply. */
export async function sendAll(port: number, events: readonly TestEvent[], concurrency: number): Promise<LoadOutcome> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const statuses = new Map<number, number>();
  let wrongGreeting = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < events.length; i = next++) {
      const event = events[i] as TestEvent;
      let status = 0;
      try {
        const reply = await postOn(agent, port, event);
        status = reply.status;
        if (status === 200 && event.greeting !== undefined && !reply.body.includes(event.greeting)) wrongGreeting++;
      } catch {
        status = 0;
      }
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  const started = performance.now();
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, events.length) }, worker));
  } finally {
    agent.destroy();
  }
  return { seconds: (performance.now() - started) / 1000, statuses, wrongGreeting };
}
