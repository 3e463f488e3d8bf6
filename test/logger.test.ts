import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { createLogger, formatLine, type Level } from "../functions/logger.ts";

function capture(level: Level) {
  const writes: string[] = [];
  const logger = createLogger({ level, sink: { write: (chunk) => void writes.push(chunk) }, now: () => new Date("2026-11-25T10:00:00Z") });
  return { logger, writes };
}

describe("logger", () => {
  it("writes one JSON object per line with time, level and msg first", () => {
    assert.equal(
      formatLine("2026-11-25T10:00:00.000Z", "info", "welcome patrick", { member: "patrick", team: null }),
      '{"time":"2026-11-25T10:00:00.000Z","level":"info","msg":"welcome patrick","member":"patrick","team":null}\n',
    );
  });

  it("cannot be split, forged or coloured by what the input carries", () => {
    const hostile = 'x\n{"level":"error","msg":"forged"}\r\u001b[31mred\u001b[0m\u2028\u2029\u009b31m\u202etxt';
    const line = formatLine("t", "warn", `error: ${hostile}`, { member: hostile });
    assert.equal(line.indexOf("\n"), line.length - 1, "exactly one line");
    for (const forbidden of ["\r", "\u001b", "\u2028", "\u2029", "\u009b", "\u202e"]) {
      assert.ok(!line.includes(forbidden), `raw ${JSON.stringify(forbidden)} must not reach the log`);
    }
    const parsed = JSON.parse(line) as Record<string, unknown>;
    assert.equal(parsed["msg"], `error: ${hostile}`, "the content survives, escaped");
    assert.equal(parsed["member"], hostile);
  });

  it("does not let a field replace time, level or msg", () => {
    const parsed = JSON.parse(formatLine("t", "info", "real", { msg: "fake", level: "error", time: "x" })) as Record<string, unknown>;
    assert.deepEqual([parsed["msg"], parsed["level"], parsed["time"]], ["real", "info", "t"]);
  });

  it("a child logger adds its fields to every line, after msg; a line's own field wins; lines stay in order in one buffer", async () => {
    const { logger, writes } = capture("debug");
    const child = logger.child({ trace_id: "t1", span_id: "s1" });
    logger.info("root");
    child.info("one", { member: "patrick" });
    child.child({ extra: 1 }).warn("two");
    child.debug("three", { span_id: "own" });
    child.error("four");
    assert.equal(child.enabled("debug"), true);
    await tick();
    const records = writes
      .join("")
      .trim()
      .split("\n")
      .map((l) => {
        const { time: _time, ...rest } = JSON.parse(l) as Record<string, unknown>;
        return rest;
      });
    assert.deepEqual(records, [
      { level: "info", msg: "root" },
      { level: "info", msg: "one", trace_id: "t1", span_id: "s1", member: "patrick" },
      { level: "warn", msg: "two", trace_id: "t1", span_id: "s1", extra: 1 },
      { level: "debug", msg: "three", trace_id: "t1", span_id: "own" },
      { level: "error", msg: "four", trace_id: "t1", span_id: "s1" },
    ]);
    assert.equal(writes.length, 1, "one buffer, flushed once");
  });

  it("drops lines below the configured level", async () => {
    const { logger, writes } = capture("warn");
    logger.debug("d");
    logger.info("i");
    logger.warn("w");
    logger.error("e");
    await tick();
    const levels = writes
      .join("")
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { level: string }).level);
    assert.deepEqual(levels, ["warn", "error"]);
    assert.equal(logger.enabled("info"), false);
    assert.equal(logger.enabled("error"), true);
  });

  it("silent writes nothing, where error would have written a line", async () => {
    const silent = capture("silent");
    const error = capture("error");
    for (const { logger } of [silent, error]) {
      logger.error("e");
      logger.flush();
    }
    await tick();
    assert.deepEqual(silent.writes, []);
    assert.equal(silent.logger.enabled("error"), false);
    assert.deepEqual(error.writes, ['{"time":"2026-11-25T10:00:00.000Z","level":"error","msg":"e"}\n']);
  });

  it("batches the lines of one event-loop turn into one write, and flush() writes at once", async () => {
    const { logger, writes } = capture("info");
    const line = (msg: string): string => `{"time":"2026-11-25T10:00:00.000Z","level":"info","msg":"${msg}"}\n`;
    logger.info("a");
    logger.info("b");
    assert.deepEqual(writes, [], "buffered until the turn ends");
    await tick();
    assert.deepEqual(writes, [line("a") + line("b")]);
    logger.info("c");
    logger.flush();
    assert.deepEqual(writes, [line("a") + line("b"), line("c")]);
    await tick();
    assert.equal(writes.length, 2, "the turn's scheduled flush finds nothing left");
  });

  it("writes at once, whatever the turn, when highWaterMark characters are buffered", () => {
    const writes: string[] = [];
    const logger = createLogger({
      level: "info",
      sink: { write: (chunk) => void writes.push(chunk) },
      now: () => new Date("2026-11-25T10:00:00Z"),
      highWaterMark: 100,
    });
    logger.info("a"); // 61 characters
    assert.equal(writes.length, 0);
    logger.info("b"); // 122
    assert.deepEqual(
      writes.map((w) => w.length),
      [122],
    );
  });

  it("flushAtExit hands the buffer to a plain sink synchronously; drain resolves true at once for it", async () => {
    const { logger, writes } = capture("info");
    logger.info("a");
    assert.equal(logger.flushAtExit(100), true);
    assert.deepEqual(writes, ['{"time":"2026-11-25T10:00:00.000Z","level":"info","msg":"a"}\n']);
    logger.info("b");
    assert.equal(await logger.drain(0), true);
    assert.equal(writes.length, 2);
  });
});
