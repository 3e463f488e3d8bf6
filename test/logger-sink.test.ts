// The stdout sink when its reader is slow or gone: in-process against a stream
// whose writes complete only when the test says so, then for real, with a child
// process whose stdout is a pipe or a FIFO that the test reads late, or never.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { closeSync, constants, mkdtempSync, openSync, rmSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Readable, Writable } from "node:stream";
import { after, describe, it } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { createLogger, createStdoutSink, type SinkStream } from "../functions/logger.ts";
import { binaryEvent, memberObject, post } from "./support/greeter-server.ts";
import { freePort } from "./support/ports.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const loggerUrl = new URL("../functions/logger.ts", import.meta.url).href;

/** A stream that accepts writes and completes them when the test calls release(). */
function slowStream() {
  const done: string[] = [];
  const held: [string, (err?: Error | null) => void][] = [];
  const stream = new Writable({
    decodeStrings: false,
    write(chunk: string, _encoding, callback) {
      held.push([chunk, callback]);
    },
  });
  return {
    stream,
    done,
    /** Completes every write handed to the stream so far, and those it takes meanwhile. */
    async release(): Promise<void> {
      for (let next = held.shift(); next !== undefined; next = held.shift()) {
        done.push(next[0]);
        next[1]();
        await tick();
      }
    },
    /** Completes the write in progress only. */
    releaseOne(): void {
      const next = held.shift();
      assert.ok(next !== undefined, "no write in progress");
      done.push(next[0]);
      next[1]();
    },
    /** Fails the write in progress, as a pipe whose reader is gone does. */
    break(): void {
      const next = held.shift();
      assert.ok(next !== undefined, "no write in progress");
      next[1](Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
    },
  };
}

const sinkOn = (stream: SinkStream, maxBacklog: number) => createStdoutSink({ stream: () => stream, maxBacklog, now: () => new Date("2026-11-25T10:00:00Z") });
const line = (i: number): string => `${JSON.stringify({ i })}\n`;

describe("stdout sink (in-process)", () => {
  it("drops whole batches beyond maxBacklog, counts their lines, and reports them once, where they were dropped, when the reader catches up", async () => {
    const s = slowStream();
    const sink = sinkOn(s.stream, 100);
    sink.write(line(0) + line(1)); // 16 characters, in flight
    sink.write(`${"x".repeat(70)}\n`); // 87 held: fits
    sink.write(line(2) + line(3)); // 103: dropped
    sink.write(line(4)); // 95 would fit, but the backlog is still above half the limit: dropped
    assert.equal(s.stream.writableLength, 87);
    await s.release();
    // The reader caught up: the report goes out on its own, then the stream is empty.
    assert.equal(s.stream.writableLength, 0);
    sink.write(line(5));
    await s.release();
    assert.deepEqual(s.done, [
      line(0) + line(1),
      `${"x".repeat(70)}\n`,
      '{"time":"2026-11-25T10:00:00.000Z","level":"warn","msg":"log lines dropped: stdout was not read fast enough","dropped":3}\n',
      line(5),
    ]);
  });

  it("puts the report in front of the first batch it takes again, when that comes before the backlog is gone", async () => {
    const s = slowStream();
    const sink = sinkOn(s.stream, 40);
    sink.write(`${"a".repeat(30)}\n`);
    sink.write(line(1)); // 31 + 8 = 39: fits
    sink.write(line(2)); // 47: dropped
    s.releaseOne();
    assert.equal(s.stream.writableLength, 8, "below half the limit now");
    sink.write(line(3));
    await s.release();
    assert.deepEqual(s.done, [
      `${"a".repeat(30)}\n`,
      line(1),
      `{"time":"2026-11-25T10:00:00.000Z","level":"warn","msg":"log lines dropped: stdout was not read fast enough","dropped":1}\n${line(3)}`,
    ]);
  });

  it("after a write error (EPIPE) drops everything silently: no throw, no error event left unhandled, drain says false at once", async () => {
    const s = slowStream();
    const sink = sinkOn(s.stream, 1000);
    sink.write(line(0));
    sink.write(line(1));
    s.break();
    await tick();
    assert.equal(s.stream.destroyed, true, "the stream did fail");
    sink.write(line(2));
    assert.equal(sink.writeSync(line(3), 1000), false);
    const t0 = performance.now();
    assert.equal(await sink.drain(5000), false);
    assert.ok(performance.now() - t0 < 1000, "drain waited for a reader that is gone");
    assert.deepEqual(s.done, []);
  });

  it("drain resolves true once everything is written, false when the deadline comes first", async () => {
    const s = slowStream();
    const sink = sinkOn(s.stream, 1000);
    assert.equal(await sink.drain(0), true, "nothing written yet");
    sink.write(line(0));
    assert.equal(await sink.drain(20), false);
    const drained = sink.drain(5000);
    await s.release();
    assert.equal(await drained, true);
    assert.deepEqual(s.done, [line(0)]);
  });

  it("writeSync queues behind what the stream still holds instead of writing past it", async () => {
    const s = slowStream();
    const sink = sinkOn(s.stream, 1000);
    sink.write(line(0));
    assert.equal(sink.writeSync(line(1), 1000), false);
    await s.release();
    assert.deepEqual(s.done, [line(0), line(1)]);
  });

  it("the logger's drain hands its buffer to the sink and waits for it", async () => {
    const s = slowStream();
    const logger = createLogger({ level: "info", sink: sinkOn(s.stream, 1000), now: () => new Date("2026-11-25T10:00:00Z") });
    logger.info("a");
    const drained = logger.drain(5000);
    assert.equal(s.stream.writableLength, 61, "handed over at once, not at the end of the turn");
    await s.release();
    assert.equal(await drained, true);
    assert.deepEqual(s.done, ['{"time":"2026-11-25T10:00:00.000Z","level":"info","msg":"a"}\n']);
  });
});

// ---------------------------------------------------------------------------
// For real: a child process that uses the logger, its stdout read late or never.

type StdoutKind = "spawn's pipe (a socket, blocking in the child)" | "a FIFO, blocking" | "a FIFO, non-blocking";

const fifoDir = mkdtempSync(path.join(tmpdir(), "greeter-sink-"));
let fifoCount = 0;
const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  rmSync(fifoDir, { recursive: true, force: true });
});

interface Run {
  readonly child: ChildProcess;
  /** Starts reading the child's stdout (until then, at most the kernel's buffer and, for spawn's pipe, Node's read-ahead hold it). */
  read(): void;
  /** Closes the reading end: the reader is gone. */
  gone(): void;
  /** Everything read once the child has exited and stdout reached its end. */
  output(): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  stderr(): string;
}

/** Starts `node <args>` with its stdout on the given kind of pipe, which nobody reads until run.read(). */
function start(kind: StdoutKind, args: readonly string[], env: Record<string, string>, cwd?: string): Run {
  let stdout: number | "pipe" = "pipe";
  let readFd: number | undefined;
  if (kind !== "spawn's pipe (a socket, blocking in the child)") {
    const fifo = path.join(fifoDir, `out-${fifoCount++}`);
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0, "mkfifo failed");
    readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    stdout = openSync(fifo, constants.O_WRONLY | (kind === "a FIFO, non-blocking" ? constants.O_NONBLOCK : 0));
  }
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env["PATH"] ?? "", ...env }, stdio: ["ignore", stdout, "pipe"] });
  children.add(child);
  if (typeof stdout === "number") closeSync(stdout);
  let err = "";
  child.stderr?.setEncoding("utf8").on("data", (c: string) => (err += c));
  const exited = once(child, "exit").then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    ms: performance.now() - t0,
  }));
  let reader: Readable | Socket | undefined = child.stdout ?? undefined;
  let text = "";
  let ended: Promise<unknown> | undefined;
  const read = (): void => {
    if (ended !== undefined) return;
    if (reader === undefined && readFd !== undefined) reader = new Socket({ fd: readFd, readable: true, writable: false });
    assert.ok(reader !== undefined);
    reader.setEncoding("utf8").on("data", (c: string) => (text += c));
    ended = once(reader, "end");
  };
  return {
    child,
    read,
    gone() {
      if (reader !== undefined) reader.destroy();
      else if (readFd !== undefined) closeSync(readFd);
    },
    async output() {
      await exited;
      read();
      await ended;
      return text;
    },
    exited,
    stderr: () => err,
  };
}

const runScript = (kind: StdoutKind, mode: string, env: Record<string, string> = {}): Run =>
  start(kind, ["--input-type=module", "-e", SCRIPT], { LOGGER_URL: loggerUrl, MODE: mode, ...env });

// The child: the logger on its real stdout, in one of these modes.
const SCRIPT = `
const { createLogger, createStdoutSink } = await import(process.env.LOGGER_URL);
const { writeSync } = await import("node:fs");
const mode = process.env.MODE;
if (mode === "flood-then-exit") {
  // More than any pipe holds, then process.exit with no drain: the exit flush must give up in time.
  const logger = createLogger({ level: "info" });
  process.on("exit", () => logger.flushAtExit(300));
  for (let i = 0; i < 2000; i++) {
    logger.info("flood", { i, pad: "p".repeat(1000) });
    if (i % 100 === 99) await new Promise((r) => setImmediate(r));
  }
  process.stderr.write("flooded\\n");
  logger.info("last");
  process.exit(0);
} else if (mode === "last-words") {
  // The pipe full to the last byte and nothing queued in the stream: the exit flush itself must wait for room.
  const logger = createLogger({ level: "info" });
  process.on("exit", () => logger.flushAtExit(Number(process.env.BUDGET_MS)));
  void process.stdout; // as the sink does first: a pipe's fd becomes non-blocking
  const filler = Buffer.from("#".repeat(4095) + "\\n"); // PIPE_BUF: written whole or not at all
  let filled = 0;
  for (;;) {
    try { filled += writeSync(1, filler); } catch (err) { if (err.code === "EAGAIN") break; throw err; }
  }
  logger.info("last words", { filled });
  process.stderr.write("full\\n");
  process.exit(0);
} else if (mode === "drop") {
  // In one turn, so that nothing is written meanwhile: once the backlog is full it stays full.
  const logger = createLogger({ level: "info", sink: createStdoutSink({ maxBacklog: 256 * 1024 }) });
  for (let i = 0; i < 3000; i++) logger.info("line", { i, pad: "p".repeat(400) });
  process.stderr.write("logged\\n");
  const first = await logger.drain(10000);
  logger.info("after");
  const second = await logger.drain(10000);
  process.stderr.write(\`drained \${first} \${second}\\n\`);
}
`;

const kinds: readonly StdoutKind[] = ["spawn's pipe (a socket, blocking in the child)", "a FIFO, blocking", "a FIFO, non-blocking"];

const parse = (text: string): Record<string, unknown>[] =>
  text
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("stdout sink (a child process, its stdout read late or never)", () => {
  for (const kind of kinds) {
    it(`${kind}: never read, process.exit() still ends the process in bounded time`, { timeout: 15_000 }, async () => {
      const run = runScript(kind, "flood-then-exit");
      const { code, signal, ms } = await run.exited;
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, run.stderr());
      assert.equal(run.stderr(), "flooded\n");
      assert.ok(ms < 5000, `exit took ${ms.toFixed(0)} ms`);
      run.gone();
    });

    it(`${kind}: lines beyond the backlog limit are dropped and counted exactly, and reported once the reader reads`, { timeout: 15_000 }, async () => {
      const run = runScript(kind, "drop");
      run.child.stderr?.on("data", (c: string) => {
        if (c.includes("logged")) run.read();
      });
      const records = parse(await run.output());
      assert.deepEqual(await run.exited.then(({ code }) => code), 0);
      assert.equal(run.stderr(), "logged\ndrained true true\n");
      const at = records.findIndex((r) => r["msg"] === "log lines dropped: stdout was not read fast enough");
      assert.ok(at > 0, `no report, or nothing before it: ${records.length} records`);
      // Lines 0 … at-1 in order, the report of the rest, then the line logged after.
      assert.deepEqual(
        records.slice(0, at).map((r) => r["i"]),
        Array.from({ length: at }, (_, i) => i),
      );
      assert.equal(records[at]?.["dropped"], 3000 - at);
      assert.equal(records[at]?.["level"], "warn");
      assert.deepEqual(
        records.slice(at + 1).map((r) => r["msg"]),
        ["after"],
      );
    });
  }

  for (const kind of ["a FIFO, blocking", "a FIFO, non-blocking"] as const) {
    it(`${kind}, full: the exit flush waits for the reader and writes the last line`, { timeout: 15_000 }, async () => {
      const run = runScript(kind, "last-words", { BUDGET_MS: "3000" });
      run.child.stderr?.on("data", (c: string) => {
        if (c.includes("full")) setTimeout(() => run.read(), 100);
      });
      const text = await run.output();
      const { code, ms } = await run.exited;
      assert.equal(code, 0, run.stderr());
      assert.ok(ms < 3000, `exit took ${ms.toFixed(0)} ms`);
      const records = parse(text);
      assert.deepEqual(
        records.map((r) => r["msg"]),
        ["last words"],
      );
      const filled = records[0]?.["filled"];
      assert.ok(typeof filled === "number" && filled > 0 && filled % 4096 === 0, `filled ${String(filled)}`);
      assert.equal(text.length, filled + JSON.stringify(records[0]).length + 1, "the filler and the line, nothing else");
    });

    it(`${kind}, full and never read: the exit flush gives up after its budget`, { timeout: 15_000 }, async () => {
      const run = runScript(kind, "last-words", { BUDGET_MS: "300" });
      const { code, ms } = await run.exited;
      assert.equal(code, 0, run.stderr());
      assert.ok(ms >= 300 && ms < 3000, `exit took ${ms.toFixed(0)} ms`);
      assert.deepEqual(parse(await run.output()), [], "the last line cannot have been written");
    });
  }
});

// ---------------------------------------------------------------------------
// The function itself (`node .`, the bundle npm run build makes).

/** `node .` on a free port, once /healthz answers; its stdout not read. */
async function startFunction(kind: StdoutKind, env: Record<string, string> = {}): Promise<Run & { url: string }> {
  const port = await freePort();
  const run = start(kind, ["."], { PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info", ...env }, root);
  const url = `http://127.0.0.1:${port}`;
  let gone = false;
  void run.exited.then(() => (gone = true));
  for (let i = 0; ; i++) {
    if (gone) throw new Error(`exited before listening: ${run.stderr()}`);
    if (
      await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 200) throw new Error("not listening after 10 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ...run, url };
}

// Each request is answered 404 and logged as one warn line of about 12 kB (the
// path twice): 96 of them are more than 1 MiB, far more than a pipe (64 KiB) or
// a socket (about 200 KiB, plus what Node reads ahead on spawn's pipe) holds.
const REQUESTS = 96;
const longPath = (i: number): string => `/n${i}-${"x".repeat(6000)}`;

/** Sends the requests one by one; each must be answered within 2 s, or the event loop is stuck. */
async function floodLog(url: string): Promise<void> {
  for (let i = 0; i < REQUESTS; i++) {
    const reply = await fetch(`${url}${longPath(i)}`, { signal: AbortSignal.timeout(2000) });
    assert.equal(reply.status, 404);
    await reply.text();
  }
}

const healthz = async (url: string): Promise<number> => (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })).status;

describe("node . with a slow or vanished log reader", () => {
  for (const kind of kinds) {
    it(`${kind}: not read, it still answers; read after SIGTERM, every line arrives and it exits 0`, { timeout: 30_000 }, async () => {
      const fn = await startFunction(kind);
      await floodLog(fn.url);
      assert.equal(await healthz(fn.url), 200);
      fn.child.kill("SIGTERM");
      // The reader comes back only now: the shutdown must wait for it, not drop what is queued.
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(
        { code: fn.child.exitCode, signal: fn.child.signalCode },
        { code: null, signal: null },
        "it exited without waiting for its log to be read",
      );
      fn.read();
      const text = await fn.output();
      const { code, signal } = await fn.exited;
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, fn.stderr());
      assert.equal(fn.stderr(), "");
      assert.ok(text.length > 1024 * 1024, `only ${text.length} characters were logged`);
      const records = parse(text);
      assert.deepEqual(
        records.map((r) => r["msg"]),
        [
          "no Kubernetes cluster configured: greetings are not recorded, Reference-mode add and update are refused",
          `listening on port ${new URL(fn.url).port}`,
          ...Array.from({ length: REQUESTS }, (_, i) => `error: no route for GET ${longPath(i)}: send CloudEvents to POST /`),
          "shutting down (SIGTERM): finishing in-flight requests",
          "server closed",
        ],
      );
    });
  }

  it("a FIFO, blocking, never read: SIGTERM still ends it, once the log's short wait is over", { timeout: 30_000 }, async () => {
    const fn = await startFunction("a FIFO, blocking", { SHUTDOWN_GRACE_MS: "300" });
    await floodLog(fn.url);
    const t0 = performance.now();
    fn.child.kill("SIGTERM");
    const { code, signal } = await fn.exited;
    const ms = performance.now() - t0;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, fn.stderr());
    // The log may wait as long as requests were given (SHUTDOWN_GRACE_MS), no longer.
    assert.ok(ms >= 300 && ms < 3000, `exit took ${ms.toFixed(0)} ms after SIGTERM`);
    assert.equal(fn.stderr(), "");
    fn.gone();
  });

  for (const kind of ["spawn's pipe (a socket, blocking in the child)", "a FIFO, blocking"] as const) {
    it(`${kind}, reader gone: it keeps serving, greets, and exits 0 on SIGTERM`, { timeout: 30_000 }, async () => {
      const fn = await startFunction(kind);
      fn.gone();
      // Enough lines for several writes, each of which fails (EPIPE, or ECONNRESET on a socket).
      for (let i = 0; i < 5; i++) {
        const reply = await fetch(`${fn.url}/nope`, { signal: AbortSignal.timeout(2000) });
        assert.equal(reply.status, 404);
        await reply.text();
        await new Promise((r) => setTimeout(r, 20));
      }
      const { headers, body } = binaryEvent("dev.knative.apiserver.resource.add", memberObject("patrick", "blue"));
      const reply = await post(`${fn.url}/`, headers, body);
      assert.equal(reply.status, 200, reply.text);
      assert.equal((reply.json() as { greeting?: unknown }).greeting, "welcome patrick to the team blue");
      assert.equal(await healthz(fn.url), 200);
      fn.child.kill("SIGTERM");
      const { code, signal } = await fn.exited;
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, fn.stderr());
      assert.equal(fn.stderr(), "");
    });
  }
});
