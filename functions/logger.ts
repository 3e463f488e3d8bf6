// Structured logging: one JSON object per line, Kubernetes' convention.
//
// Lines are buffered and written once per event-loop turn: a write syscall per
// greeting is what made a synchronous logger the bottleneck under load. The
// buffer is flushed synchronously on exit so no line is lost on shutdown.
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
  /** Writes what is buffered now, synchronously. */
  flush(): void;
}

/** Where lines go. The default is file descriptor 1 (stdout). */
export interface LogSink {
  write(chunk: string): void;
}

export const stdoutSink: LogSink = {
  write(chunk) {
    writeAll(1, chunk);
  },
};

function writeAll(fd: number, chunk: string): void {
  let buf = Buffer.from(chunk, "utf8");
  while (buf.length > 0) {
    try {
      const n = writeSync(fd, buf);
      buf = buf.subarray(n);
    } catch (err) {
      // A full non-blocking pipe: try again rather than drop log lines.
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
    }
  }
}

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
  return escapeUnsafe(JSON.stringify(record)) + "\n";
}

export interface LoggerOptions {
  level: Level;
  sink?: LogSink;
  now?: () => Date;
  /** Flush when this many characters are buffered, whatever the turn. */
  highWaterMark?: number;
}

export function createLogger(options: LoggerOptions): Logger {
  const threshold = levels[options.level];
  const sink = options.sink ?? stdoutSink;
  const now = options.now ?? (() => new Date());
  const highWaterMark = options.highWaterMark ?? 64 * 1024;
  let pending = "";
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    if (pending === "") return;
    const chunk = pending;
    pending = "";
    sink.write(chunk);
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

  return {
    debug: (msg, fields) => log("debug", msg, fields),
    info: (msg, fields) => log("info", msg, fields),
    warn: (msg, fields) => log("warn", msg, fields),
    error: (msg, fields) => log("error", msg, fields),
    enabled: (level) => levels[level] >= threshold,
    flush,
  };
}

export function isLevel(value: string): value is Level {
  return Object.hasOwn(levels, value);
}
