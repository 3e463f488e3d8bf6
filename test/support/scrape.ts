// Reading GET /metrics in tests: the scrape, parsed strictly, and what moved
// between two scrapes, so that a test can say exactly which series its cause
// moved, by how much, and that nothing else of the greeter's did.
import assert from "node:assert/strict";
import { parseExposition, seriesOf, type Family } from "./prometheus-text.ts";

export const PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";

export interface Scraped {
  readonly families: Map<string, Family>;
  readonly series: Map<string, number>;
}

export function read(text: string): Scraped {
  const families = parseExposition(text);
  return { families, series: seriesOf(families) };
}

export async function scrape(baseUrl: string): Promise<Scraped> {
  const res = await fetch(`${baseUrl}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), PROMETHEUS_TEXT);
  return read(await res.text());
}

/**
 * The greeter's own series (member_greeter_*) whose value changed, with the
 * change; histogram buckets and sums are left out (they move with _count,
 * which is kept), as are series that appeared at 0.
 */
export function moved(before: Scraped, after: Scraped): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of after.series) {
    if (!key.startsWith("member_greeter_") || /_bucket\{|_sum(\{|$)/.test(key)) continue;
    const delta = value - (before.series.get(key) ?? 0);
    if (delta !== 0) out[key] = delta;
  }
  for (const key of before.series.keys()) {
    if (key.startsWith("member_greeter_") && !after.series.has(key)) out[key] = Number.NaN;
  }
  return out;
}
