// W3C Trace Context, read by hand (functions/trace-context.ts): what is a
// valid traceparent and tracestate, which carrier wins, and the child span.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../functions/logger.ts";
import { newSpanId, scopeFor } from "../functions/request-scope.ts";
import { childSpan, incomingTrace, parseTraceparent, parseTracestate } from "../functions/trace-context.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
const VALID = `00-${TRACE}-${PARENT}-01`;

describe("traceparent", () => {
  it("reads a valid version-00 value, and one of a later version with more fields", () => {
    assert.deepEqual(parseTraceparent(VALID), { traceId: TRACE, parentId: PARENT, flags: "01" });
    assert.deepEqual(parseTraceparent(` ${VALID}\t`), { traceId: TRACE, parentId: PARENT, flags: "01" }, "optional whitespace around the value");
    assert.deepEqual(parseTraceparent(`cc-${TRACE}-${PARENT}-09-what-comes-later`), { traceId: TRACE, parentId: PARENT, flags: "09" });
    assert.deepEqual(parseTraceparent(`cc-${TRACE}-${PARENT}-00`), { traceId: TRACE, parentId: PARENT, flags: "00" });
  });

  const invalid: [string, unknown][] = [
    ["absent", undefined],
    ["not a string", 42],
    ["an array (two headers)", [VALID, VALID]],
    ["empty", ""],
    ["upper-case hex", VALID.toUpperCase()],
    ["version ff", `ff-${TRACE}-${PARENT}-01`],
    ["version 00 with more fields", `${VALID}-extra`],
    ["a later version glued to more", `cc-${TRACE}-${PARENT}-01extra`],
    ["all-zero trace id", `00-${"0".repeat(32)}-${PARENT}-01`],
    ["all-zero parent id", `00-${TRACE}-${"0".repeat(16)}-01`],
    ["a short trace id", `00-${TRACE.slice(1)}-${PARENT}-01`],
    ["a non-hex flag", `00-${TRACE}-${PARENT}-0g`],
    ["other separators", `00_${TRACE}_${PARENT}_01`],
    ["a line break and a forged log line", `00-${TRACE}-${PARENT}-01\n{"level":"error"}`],
    ["a version that is not hex", `0x-${TRACE}-${PARENT}-01`],
  ];
  for (const [what, value] of invalid) {
    it(`ignores ${what}`, () => {
      assert.equal(parseTraceparent(value), undefined);
    });
  }
});

describe("tracestate", () => {
  it("keeps valid list members, drops empty ones and joins several headers", () => {
    assert.equal(parseTracestate("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    assert.equal(parseTracestate(" congo=t61rcWkgMzE , ,tenant@vendor=a b"), "congo=t61rcWkgMzE,tenant@vendor=a b");
    assert.equal(parseTracestate(["a=1", "b=2"]), "a=1,b=2");
  });

  for (const [what, value] of [
    ["absent", undefined],
    ["empty", ""],
    ["a member without '='", "congo"],
    ["an upper-case key", "Congo=1"],
    ["a value with '='", "a=b=c"],
    ["an empty value", "a= "],
    ["a control character", "a=b\u0007"],
    ["a key twice", "a=1,a=2"],
    ["more than 32 members", Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(",")],
  ] as const) {
    it(`drops the whole tracestate when ${what}`, () => {
      assert.equal(parseTracestate(value), undefined);
    });
  }
});

describe("which carrier, and the child span", () => {
  const other = `00-${"1".repeat(32)}-${"2".repeat(16)}-00`;
  it("the W3C headers (the hop that delivered it) win over the CloudEvents extension; the extension when the headers have none or a bad one", () => {
    const both = incomingTrace({ headers: { traceparent: VALID, tracestate: "h=1" }, extension: { traceparent: other, tracestate: "e=1" } });
    assert.deepEqual(both, { traceId: TRACE, parentId: PARENT, flags: "01", tracestate: "h=1" });
    const badHeader = incomingTrace({ headers: { traceparent: "nonsense", tracestate: "h=1" }, extension: { traceparent: other, tracestate: "e=1" } });
    assert.equal(badHeader?.traceId, "1".repeat(32));
    assert.equal(badHeader?.tracestate, "e=1", "the tracestate comes with its own traceparent");
    assert.equal(incomingTrace({ headers: { traceparent: undefined, tracestate: "h=1" }, extension: { traceparent: 7, tracestate: undefined } }), undefined);
  });

  it("the child: same trace, the new span id, the known flags only, the tracestate passed on", () => {
    const parent = { traceId: TRACE, parentId: PARENT, flags: "ff", tracestate: "a=1" };
    assert.deepEqual(childSpan(parent, "b7ad6b7169203331"), {
      traceId: TRACE,
      spanId: "b7ad6b7169203331",
      traceparent: `00-${TRACE}-b7ad6b7169203331-03`,
      tracestate: "a=1",
    });
    assert.equal(childSpan({ ...parent, flags: "00" }, "b7ad6b7169203331").traceparent, `00-${TRACE}-b7ad6b7169203331-00`);
  });

  it("span ids are 16 hex digits, random", () => {
    const ids = new Set(Array.from({ length: 1000 }, newSpanId));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[0-9a-f]{16}$/);
  });

  it("the request scope: a child logger naming the span when there is a trace, the logger itself when not", () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "info", sink: { write: (c) => void lines.push(c) } });
    const traced = scopeFor(
      logger,
      { headers: { traceparent: VALID, tracestate: undefined }, extension: { traceparent: undefined, tracestate: undefined } },
      () => "b7ad6b7169203331",
    );
    assert.equal(traced.span?.traceparent, `00-${TRACE}-b7ad6b7169203331-01`);
    traced.logger.info("hello", { member: "patrick" });
    const untraced = scopeFor(logger, { headers: { traceparent: "bad", tracestate: undefined }, extension: { traceparent: undefined, tracestate: undefined } });
    assert.equal(untraced.logger, logger);
    assert.equal(untraced.span, undefined);
    logger.flush();
    const record = JSON.parse(lines.join("")) as Record<string, unknown>;
    assert.deepEqual({ ...record, time: "t" }, { time: "t", level: "info", msg: "hello", trace_id: TRACE, span_id: "b7ad6b7169203331", member: "patrick" });
  });
});
