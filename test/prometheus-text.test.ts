// The strict exposition parser the /metrics tests read the scrape with
// (test/support/prometheus-text.ts): it reads what prom-client writes, labels
// of histograms included, and refuses each thing Prometheus would.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { ExpositionError, parseExposition, seriesOf } from "./support/prometheus-text.ts";

const GOOD = `# HELP a_total Things, with a \\\\ and a \\n in the help.
# TYPE a_total counter
a_total{code="X",b="say \\"hi\\"\\n"} 3
a_total{code="Z",} 0
# a plain comment
# HELP h_seconds Durations.
# TYPE h_seconds histogram
h_seconds_bucket{le="0.1",type="t"} 1
h_seconds_bucket{le="1",type="t"} 2
h_seconds_bucket{le="+Inf",type="t"} 2
h_seconds_sum{type="t"} 0.35
h_seconds_count{type="t"} 2
g -1.5e3 1700000000000
`;

describe("the strict Prometheus text parser", () => {
  it("reads counters, histograms with labels, escapes, untyped samples and timestamps", () => {
    const families = parseExposition(GOOD);
    assert.deepEqual([...families.keys()], ["a_total", "h_seconds", "g"]);
    assert.equal(families.get("a_total")?.help, "Things, with a \\ and a \n in the help.");
    assert.equal(families.get("h_seconds")?.type, "histogram");
    assert.equal(families.get("g")?.type, "untyped");
    const series = seriesOf(families);
    assert.equal(series.get('a_total{b="say \\"hi\\"\\n",code="X"}'), 3);
    assert.equal(series.get('h_seconds_bucket{le="1",type="t"}'), 2);
    assert.equal(series.get('h_seconds_count{type="t"}'), 2);
    assert.equal(series.get("g"), -1500);
  });

  it("reads what prom-client writes", async () => {
    const registry = new Registry();
    new Counter({ name: "c_total", help: "c", labelNames: ["x"], registers: [registry] }).inc({ x: 'a"b\\c\nd' }, 2);
    new Gauge({ name: "g", help: "g", registers: [registry] }).set(Number.NaN);
    const h = new Histogram({ name: "h_seconds", help: "h", labelNames: ["t"], buckets: [0.1, 1], registers: [registry] });
    h.observe({ t: "one" }, 0.5);
    h.observe({ t: "two" }, 5);
    const series = seriesOf(parseExposition(await registry.metrics()));
    assert.equal(series.get('c_total{x="a\\"b\\\\c\\nd"}'), 2);
    assert.ok(Number.isNaN(series.get("g")));
    assert.equal(series.get('h_seconds_bucket{le="1",t="one"}'), 1);
    assert.equal(series.get('h_seconds_bucket{le="1",t="two"}'), 0);
    assert.equal(series.get('h_seconds_count{t="two"}'), 1);
  });

  const broken: [string, (text: string) => string, RegExp][] = [
    ["no final line feed", (t) => t.trimEnd(), /end with a line feed/],
    ["a value that is not a number", (t) => t.replace('a_total{code="Z",} 0', 'a_total{code="Z",} zero'), /is not a number/],
    ["an unquoted label value", (t) => t.replace('code="X"', "code=X"), /not quoted/],
    ["an unterminated label value", (t) => t.replace('code="Z",} 0', 'code="Z} 0'), /unterminated|expected/],
    ["an invalid escape in a label value", (t) => t.replace('code="X"', 'code="\\t"'), /invalid escape/],
    ["a label twice", (t) => t.replace('code="X"', 'code="X",code="Y"'), /label code twice/],
    ["an invalid metric name", (t) => t.replace("g -1.5e3", "9g -1.5e3"), /invalid metric name/],
    ["a TYPE after the samples", (t) => `${t}# TYPE g gauge\n`, /after its samples/],
    ["a family split in two", (t) => `${t}a_total{code="Y"} 1\n`, /not grouped together/],
    ["a series twice", (t) => t.replace('a_total{code="Z",} 0', 'a_total{code="X",b="say \\"hi\\"\\n"} 3'), /twice/],
    ["a negative counter", (t) => t.replace('a_total{code="Z",} 0', 'a_total{code="Z",} -1'), /counter/],
    ["buckets that are not cumulative", (t) => t.replace('h_seconds_bucket{le="1",type="t"} 2', 'h_seconds_bucket{le="1",type="t"} 0'), /not cumulative/],
    ["no +Inf bucket", (t) => t.replace('h_seconds_bucket{le="+Inf",type="t"} 2\n', ""), /\+Inf/],
    ["+Inf not the count", (t) => t.replace('h_seconds_count{type="t"} 2', 'h_seconds_count{type="t"} 3'), /not the count/],
    ["no _sum", (t) => t.replace('h_seconds_sum{type="t"} 0.35\n', ""), /_sum or _count missing/],
    ["an unknown type", (t) => t.replace("# TYPE a_total counter", "# TYPE a_total countr"), /unknown type/],
    ["a histogram sample without its suffix", (t) => t.replace('h_seconds_sum{type="t"} 0.35', 'h_seconds{type="t"} 0.35'), /histogram sample/],
  ];
  for (const [what, tamper, message] of broken) {
    it(`refuses ${what}`, () => {
      const text = tamper(GOOD);
      assert.notEqual(text, GOOD, "the tampering changed nothing");
      assert.throws(
        () => parseExposition(text),
        (err: unknown) => err instanceof ExpositionError && message.test(err.message),
      );
    });
  }
});
