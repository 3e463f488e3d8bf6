// Starts the real greeter in-process on 127.0.0.1 with an ephemeral port and
// captures its log lines, so HTTP tests see exactly what production would.
import { loadConfig, type Env } from "../../functions/config.ts";
import { createLogger, type LogSink } from "../../functions/logger.ts";
import { startServer, type RunningServer } from "../../functions/http-server.ts";
import type { GreeterDeps } from "../../functions/wiring.ts";
import { waitFor } from "./wait-for.ts";

export type LogRecord = Record<string, unknown> & { level: string; msg: string };

export interface TestGreeter {
  readonly url: string;
  readonly running: RunningServer;
  /** Every raw line written so far (flushes the buffer first). */
  rawLines(): string[];
  /** Every record written so far, parsed. */
  logs(): LogRecord[];
  /** Resolves once a line with this msg has been written; rejects after timeoutMs. */
  logged(msg: string, timeoutMs?: number): Promise<LogRecord>;
  stop(): Promise<void>;
}

export async function startGreeter(env: Env = {}, deps: Partial<GreeterDeps> = {}): Promise<TestGreeter> {
  let out = "";
  const sink: LogSink = { write: (chunk) => void (out += chunk) };
  const config = loadConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "debug", ...env });
  const logger = deps.logger ?? createLogger({ level: config.logLevel, sink });
  const running = await startServer(config, { env, ...deps, logger });
  const rawLines = (): string[] => {
    logger.flush();
    return out.split("\n").filter((line) => line !== "");
  };
  const logs = (): LogRecord[] => rawLines().map((line) => JSON.parse(line) as LogRecord);
  return {
    url: running.url,
    running,
    rawLines,
    logs,
    logged: (msg, timeoutMs = 5_000) => waitFor(`the log line "${msg}"`, () => logs().find((l) => l.msg === msg), { timeoutMs, intervalMs: 10 }),
    async stop() {
      await running.shutdown("test over");
    },
  };
}

/** Headers and body of one sample event in source/samples/. */
export async function sample(name: string): Promise<{ headers: Record<string, string>; body: string }> {
  const { readFile } = await import("node:fs/promises");
  const dir = new URL("../../source/samples/", import.meta.url);
  const body = await readFile(new URL(`${name}.json`, dir), "utf8");
  let headers: Record<string, string> = { "content-type": "application/cloudevents+json" };
  try {
    const text = await readFile(new URL(`${name}.headers`, dir), "utf8");
    headers = {};
    for (const line of text.split("\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
  } catch {
    // No headers file: a structured-mode sample.
  }
  return { headers, body };
}

export interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  json(): unknown;
}

export async function post(url: string, headers: Record<string, string>, body: string | Buffer): Promise<Reply> {
  const res = await fetch(url, { method: "POST", headers, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as unknown };
}

/** A binary-mode ApiServerSource event for a Member object (or reference). */
export function binaryEvent(type: string, data: unknown, extra: Record<string, string> = {}): { headers: Record<string, string>; body: string } {
  return {
    headers: {
      "content-type": "application/json",
      "ce-specversion": "1.0",
      "ce-id": `id-${Math.random().toString(36).slice(2)}`,
      "ce-source": "https://10.96.0.1:443",
      "ce-type": type,
      ...extra,
    },
    body: JSON.stringify(data),
  };
}

export function memberObject(name: string, team?: string, recorded?: string, namespace = "default"): Record<string, unknown> {
  return {
    apiVersion: "helloworld.apimeister.com/v1",
    kind: "Member",
    metadata: { name, namespace, uid: `uid-${name}`, resourceVersion: "7", generation: 1 },
    ...(team === undefined ? {} : { spec: { memberOf: team } }),
    ...(recorded === undefined ? {} : { status: { team: recorded } }),
  };
}
