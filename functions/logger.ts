// Structured logging: one JSON object per line, Kubernetes' convention.
//
// Lines are buffered and handed to the sink once per event-loop turn: a write
// syscall per greeting is what made a synchronous logger the bottleneck under load.
//
// A slow or vanished log reader must neither stall nor kill the function. The
// stdout sink first creates process.stdout: on a pipe or a socket (a
// container's stdout, a child's pipe) libuv then makes fd 1 non-blocking, so a
// write never waits for the reader. A batch goes straight to the fd; what does
// not fit goes to process.stdout, which waits for room with epoll and keeps
// later batches in order behind it. An EPIPE is an error to note, never a throw.
// Not fs.write on fd 1 instead: on a blocking fd that parks a threadpool thread
// inside write(), and process.exit() then waits for that thread, that is, for
// the reader. What waits for room is bounded (maxBacklog); beyond it lines are
// dropped, counted, and reported in one line once the reader catches up.
import { writeSync } from "node:fs";

export const levels = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type Level = keyof typeof levels;
export type LogLevel = Exclude<Level, "silent">;

export type Fields = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  enabled(level: LogLevel): boolean;
  /**
   * A logger whose every line also carries `fields` (one request's trace ids),
   * writing through this one's buffer. Passed down to what the request causes,
   * rather than kept in async-local state.
   */
  child(fields: Fields): Logger;
  /** Hands what is buffered to the sink now, synchronously (stdout may still be writing it: see drain). */
  flush(): void;
}

/** What createLogger returns: a Logger, and what the process's owner needs at shutdown. */
export interface RootLogger extends Logger {
  /** flush(), then waits at most timeoutMs for the sink to write it all; true when it did. */
  drain(timeoutMs: number): Promise<boolean>;
  /** For process 'exit', when no callback will run again: flush() as a synchronous write, bounded by timeoutMs. */
  flushAtExit(timeoutMs: number): boolean;
}

/** Where lines go. The default is stdout (stdoutSink). */
export interface LogSink {
  write(chunk: string): void;
  /** Resolves true once everything written so far has left the process, false when timeoutMs passes first or it cannot. */
  drain?(timeoutMs: number): Promise<boolean>;
  /** Writes chunk after what is already out, synchronously and within timeoutMs; true when all of it was written. */
  writeSync?(chunk: string, timeoutMs: number): boolean;
}

/** What the stdout sink needs of its stream (process.stdout, or a stand-in in tests). */
export interface SinkStream {
  write(chunk: string | Uint8Array, callback: (err?: Error | null) => void): boolean;
  /** What it accepted and has not written yet (characters or bytes). */
  readonly writableLength: number;
  on(event: "error", listener: (err: Error) => void): unknown;
}

export interface StdoutSinkOptions {
  /** Resolved on first use, so that importing this module opens nothing. Default: process.stdout. */
  stream?: () => SinkStream;
  /** The fd behind the stream, written directly while nothing is queued. Default: 1 for process.stdout, none for a stream given here. */
  fd?: number;
  /** Characters the stream may hold unwritten before lines are dropped. Default: 4 MiB. */
  maxBacklog?: number;
  now?: () => Date;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

function countLines(chunk: string): number {
  let n = 0;
  for (let i = chunk.indexOf("\n"); i !== -1; i = chunk.indexOf("\n", i + 1)) n++;
  return n;
}

export function createStdoutSink(options: StdoutSinkOptions = {}): Required<LogSink> {
  const fd = options.fd ?? (options.stream === undefined ? 1 : undefined);
  const maxBacklog = options.maxBacklog ?? 4 * 1024 * 1024;
  const now = options.now ?? (() => new Date());
  let stream: SinkStream | undefined;
  // EPIPE or any other write error: the reader is gone for good, so is every later line.
  let closed = false;
  let dropped = 0;
  // Once dropping, wait for half the backlog to go before taking lines again:
  // one report per stall, not one per batch that happens to fit.
  let dropping = false;
  const waiters = new Set<(drained: boolean) => void>();

  const settle = (drained: boolean): void => {
    for (const waiter of waiters) waiter(drained);
    waiters.clear();
  };
  const fail = (): void => {
    closed = true;
    settle(false);
  };
  const out = (): SinkStream => {
    if (stream === undefined) {
      stream = (options.stream ?? (() => process.stdout))();
      stream.on("error", fail);
    }
    return stream;
  };
  const report = (): string => {
    const line = formatLine(now().toISOString(), "warn", "log lines dropped: stdout was not read fast enough", { dropped });
    dropped = 0;
    return line;
  };
  const written = (err?: Error | null): void => {
    if (err) {
      fail();
      return;
    }
    if (closed || stream === undefined || stream.writableLength > 0) return;
    if (dropped > 0) send(report());
    else settle(true);
  };
  const send = (chunk: string): void => {
    try {
      const s = out();
      if (fd === undefined || s.writableLength > 0) {
        s.write(chunk, written);
        return;
      }
      // Nothing queued: write at once, as the stream would, without its
      // bookkeeping (a few µs a batch under load); hand it only what does not fit.
      let n = 0;
      try {
        n = writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      }
      if (n < Buffer.byteLength(chunk, "utf8")) s.write(Buffer.from(chunk, "utf8").subarray(n), written);
    } catch {
      fail();
    }
  };

  const write = (chunk: string): void => {
    if (closed) return;
    const backlog = out().writableLength;
    if (backlog > 0 && (dropping ? backlog > maxBacklog / 2 : backlog + chunk.length > maxBacklog)) {
      dropping = true;
      dropped += countLines(chunk);
      return;
    }
    dropping = false;
    if (dropped > 0) send(report() + chunk);
    else if (chunk !== "") send(chunk);
  };

  const drain = (timeoutMs: number): Promise<boolean> => {
    if (closed) return Promise.resolve(false);
    if (stream === undefined || stream.writableLength === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiters.delete(done);
        resolve(false);
      }, timeoutMs);
      const done = (drained: boolean): void => {
        clearTimeout(timer);
        resolve(drained);
      };
      waiters.add(done);
    });
  };

  const writeAllSync = (chunk: string, timeoutMs: number): boolean => {
    if (closed) return false;
    // Writing past bytes still queued in the stream would tear lines apart: queue behind them.
    if (fd === undefined || out().writableLength > 0) {
      write(chunk);
      return false;
    }
    let buf = Buffer.from(dropped > 0 ? report() + chunk : chunk, "utf8");
    const deadline = Date.now() + timeoutMs;
    let pause = 1;
    while (buf.length > 0) {
      try {
        buf = buf.subarray(writeSync(fd, buf));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") {
          fail();
          return false;
        }
        const left = deadline - Date.now();
        if (left <= 0) return false;
        Atomics.wait(sleepCell, 0, 0, Math.min(pause, left));
        pause = Math.min(pause * 2, 20);
      }
    }
    return true;
  };

  return { write, drain, writeSync: writeAllSync };
}

export const stdoutSink: Required<LogSink> = createStdoutSink();

// JSON.stringify already escapes C0 controls (so ESC, CR and LF cannot colour or
// split a line) and lone surrogates; these it leaves alone, and terminals or log
// viewers treat them as controls or line breaks.
const unsafeChars = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const unsafeCharsTest = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function escapeUnsafe(json: string): string {
  if (!unsafeCharsTest.test(json)) return json;
  return json.replace(unsafeChars, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Serialises one record as one safe line (exported for tests). */
export function formatLine(time: string, level: LogLevel, msg: string, fields?: Fields): string {
  let record: Record<string, unknown>;
  if (fields === undefined) {
    record = { time, level, msg };
  } else if (fields["time"] === undefined && fields["level"] === undefined && fields["msg"] === undefined) {
    // The common case, as one object literal: V8's fast path for JSON.stringify.
    record = { time, level, msg, ...fields };
  } else {
    // A field named like a fixed key must not replace the time, level or message.
    record = { ...fields, time, level, msg };
  }
  return `${escapeUnsafe(JSON.stringify(record))}\n`;
}

export interface LoggerOptions {
  level: Level;
  sink?: LogSink;
  now?: () => Date;
  /** Flush when this many characters are buffered, whatever the turn. */
  highWaterMark?: number;
}

export function createLogger(options: LoggerOptions): RootLogger {
  const threshold = levels[options.level];
  const sink = options.sink ?? stdoutSink;
  const now = options.now ?? (() => new Date());
  const highWaterMark = options.highWaterMark ?? 64 * 1024;
  let pending = "";
  let scheduled = false;

  const take = (): string => {
    scheduled = false;
    const chunk = pending;
    pending = "";
    return chunk;
  };

  const flush = (): void => {
    const chunk = take();
    if (chunk !== "") sink.write(chunk);
  };

  const log = (level: LogLevel, msg: string, fields?: Fields): void => {
    if (levels[level] < threshold) return;
    pending += formatLine(now().toISOString(), level, msg, fields);
    if (pending.length >= highWaterMark) {
      flush();
    } else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  const enabled = (level: LogLevel): boolean => levels[level] >= threshold;
  const child = (base: Fields): Logger => {
    // The line's own fields come last: what a call site says about itself wins.
    const withBase = (fields?: Fields): Fields => (fields === undefined ? base : { ...base, ...fields });
    return {
      debug: (msg, fields) => log("debug", msg, withBase(fields)),
      info: (msg, fields) => log("info", msg, withBase(fields)),
      warn: (msg, fields) => log("warn", msg, withBase(fields)),
      error: (msg, fields) => log("error", msg, withBase(fields)),
      enabled,
      child: (more) => child({ ...base, ...more }),
      flush,
    };
  };

  return {
    debug: (msg, fields) => log("debug", msg, fields),
    info: (msg, fields) => log("info", msg, fields),
    warn: (msg, fields) => log("warn", msg, fields),
    error: (msg, fields) => log("error", msg, fields),
    enabled,
    child,
    flush,
    drain(timeoutMs) {
      flush();
      return sink.drain?.(timeoutMs) ?? Promise.resolve(true);
    },
    flushAtExit(timeoutMs) {
      const chunk = take();
      // Called even with nothing buffered: the sink may still owe a dropped-lines report.
      if (sink.writeSync !== undefined) return sink.writeSync(chunk, timeoutMs);
      if (chunk !== "") sink.write(chunk);
      return true;
    },
  };
}

export function isLevel(value: string): value is Level {
  return Object.hasOwn(levels, value);
}
