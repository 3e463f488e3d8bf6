// A strict parser of the Prometheus text exposition format (version 0.0.4),
// line by line, for the tests of GET /metrics: what it accepts, Prometheus
// accepts. It refuses what Prometheus would (a malformed line, a bad escape,
// a TYPE after its samples, a family split in two, a duplicate series) and
// what a histogram must not be (buckets not cumulative, no +Inf, +Inf not the
// count). The npm parsers looked at (parse-prometheus-text-format) drop the
// labels of labelled histograms, which is what these tests need most.
// Format: https://prometheus.io/docs/instrumenting/exposition_formats/

export type FamilyType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  /** The sample's own name: the family's, or with _bucket, _sum or _count. */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: FamilyType;
  readonly help: string | undefined;
  readonly samples: readonly Sample[];
}

export class ExpositionError extends Error {
  override readonly name = "ExpositionError";
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const TYPES = new Set<string>(["counter", "gauge", "histogram", "summary", "untyped"]);

// Go's strconv.ParseFloat, which Prometheus reads values with: NaN and Inf in any case (prom-client writes "Nan").
function parseValue(text: string, where: string): number {
  const word = text.toLowerCase();
  if (word === "nan") return Number.NaN;
  if (word === "+inf" || word === "inf" || word === "+infinity" || word === "infinity") return Number.POSITIVE_INFINITY;
  if (word === "-inf" || word === "-infinity") return Number.NEGATIVE_INFINITY;
  if (!NUMBER.test(text)) throw new ExpositionError(`${where}: ${JSON.stringify(text)} is not a number`);
  return Number(text);
}

function unescapeText(text: string, allowQuote: boolean, where: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const next = text[++i];
    if (next === "\\") out += "\\";
    else if (next === "n") out += "\n";
    else if (next === '"' && allowQuote) out += '"';
    else throw new ExpositionError(`${where}: invalid escape \\${next ?? ""}`);
  }
  return out;
}

/** Reads `{name="value",...}` from `line` at `start` (the '{'); returns the labels and where they end. */
function parseLabels(line: string, start: number, where: string): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    if (line[i] === "}") return { labels, end: i + 1 };
    const eq = line.indexOf("=", i);
    if (eq === -1) throw new ExpositionError(`${where}: unterminated label set`);
    const name = line.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new ExpositionError(`${where}: invalid label name ${JSON.stringify(name)}`);
    if (Object.hasOwn(labels, name)) throw new ExpositionError(`${where}: label ${name} twice`);
    if (line[eq + 1] !== '"') throw new ExpositionError(`${where}: label ${name}'s value is not quoted`);
    let j = eq + 2;
    let raw = "";
    for (; j < line.length && line[j] !== '"'; j++) {
      raw += line[j];
      if (line[j] === "\\") raw += line[++j] ?? "";
    }
    if (j >= line.length) throw new ExpositionError(`${where}: unterminated value of label ${name}`);
    labels[name] = unescapeText(raw, true, where);
    i = j + 1;
    if (line[i] === ",") i++;
    else if (line[i] !== "}") throw new ExpositionError(`${where}: expected ',' or '}' after label ${name}`);
  }
}

function parseSample(line: string, where: string): Sample {
  const nameEnd = line.search(/[{ \t]/);
  if (nameEnd <= 0) throw new ExpositionError(`${where}: not a sample line`);
  const name = line.slice(0, nameEnd);
  if (!METRIC_NAME.test(name)) throw new ExpositionError(`${where}: invalid metric name ${JSON.stringify(name)}`);
  let rest = nameEnd;
  let labels: Record<string, string> = {};
  if (line[rest] === "{") {
    const parsed = parseLabels(line, rest, where);
    labels = parsed.labels;
    rest = parsed.end;
  }
  const fields = line
    .slice(rest)
    .trim()
    .split(/[ \t]+/);
  if (fields.length < 1 || fields.length > 2 || fields[0] === "") throw new ExpositionError(`${where}: expected a value and at most a timestamp`);
  if (fields[1] !== undefined && !/^-?\d+$/.test(fields[1])) throw new ExpositionError(`${where}: invalid timestamp ${fields[1]}`);
  return { name, labels, value: parseValue(fields[0] ?? "", where) };
}

/** The key of a series: name and labels, sorted, as Prometheus would print them. */
export function seriesKey(name: string, labels: Readonly<Record<string, string>>): string {
  const pairs = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return pairs.length === 0 ? name : `${name}{${pairs.join(",")}}`;
}

function checkHistogram(family: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = seriesKey("", rest);
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (sample.name === `${family.name}_bucket`) {
      if (le === undefined) throw new ExpositionError(`${family.name}: a bucket without le`);
      group.buckets.push([parseValue(le, `${family.name} le`), sample.value]);
    } else if (sample.name === `${family.name}_sum`) group.sum = sample.value;
    else if (sample.name === `${family.name}_count`) group.count = sample.value;
    else throw new ExpositionError(`${family.name}: histogram sample ${sample.name}`);
  }
  for (const [key, group] of groups) {
    const where = `${family.name}${key}`;
    if (group.sum === undefined || group.count === undefined) throw new ExpositionError(`${where}: _sum or _count missing`);
    const last = group.buckets.at(-1);
    if (last === undefined || last[0] !== Number.POSITIVE_INFINITY) throw new ExpositionError(`${where}: no +Inf bucket last`);
    if (last[1] !== group.count) throw new ExpositionError(`${where}: +Inf bucket ${last[1]} is not the count ${group.count}`);
    for (let i = 1; i < group.buckets.length; i++) {
      const [prevLe, prevCount] = group.buckets[i - 1] as [number, number];
      const [le, count] = group.buckets[i] as [number, number];
      if (!(le > prevLe)) throw new ExpositionError(`${where}: bucket bounds not increasing at le=${le}`);
      if (count < prevCount) throw new ExpositionError(`${where}: buckets not cumulative at le=${le}`);
    }
  }
}

/** Parses an exposition; throws ExpositionError at the first thing Prometheus would refuse. */
export function parseExposition(text: string): Map<string, Family> {
  if (text !== "" && !text.endsWith("\n")) throw new ExpositionError("the exposition must end with a line feed");
  const families = new Map<string, { name: string; type: FamilyType; help: string | undefined; samples: Sample[]; typed: boolean }>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  const enter = (name: string, where: string) => {
    if (current === name) return;
    if (current !== undefined) closed.add(current);
    if (closed.has(name)) throw new ExpositionError(`${where}: family ${name} is not grouped together`);
    current = name;
  };
  const familyOf = (name: string) => {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      if (!name.endsWith(suffix)) continue;
      const base = families.get(name.slice(0, -suffix.length));
      if (base?.type === "histogram" || (base?.type === "summary" && suffix !== "_bucket")) return base;
    }
    return families.get(name);
  };
  const lines = text.split("\n");
  lines.pop();
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line.trim() === "") return;
    const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
    if (meta !== null) {
      const [, kind, name = "", rest = ""] = meta;
      if (!METRIC_NAME.test(name)) throw new ExpositionError(`${where}: invalid metric name ${JSON.stringify(name)}`);
      enter(name, where);
      const family = families.get(name) ?? { name, type: "untyped" as FamilyType, help: undefined, samples: [], typed: false };
      families.set(name, family);
      if (kind === "HELP") {
        if (family.help !== undefined) throw new ExpositionError(`${where}: second HELP for ${name}`);
        family.help = unescapeText(rest, false, where);
      } else {
        if (family.typed) throw new ExpositionError(`${where}: second TYPE for ${name}`);
        if (family.samples.length > 0) throw new ExpositionError(`${where}: TYPE for ${name} after its samples`);
        if (!TYPES.has(rest.trim())) throw new ExpositionError(`${where}: unknown type ${JSON.stringify(rest)}`);
        family.type = rest.trim() as FamilyType;
        family.typed = true;
      }
      return;
    }
    if (line.startsWith("#")) return; // a plain comment
    const sample = parseSample(line, where);
    let family = familyOf(sample.name);
    if (family === undefined) {
      family = { name: sample.name, type: "untyped", help: undefined, samples: [], typed: false };
      families.set(sample.name, family);
    }
    enter(family.name, where);
    if (family.type !== "histogram" && family.type !== "summary" && sample.name !== family.name) {
      throw new ExpositionError(`${where}: ${sample.name} in family ${family.name}`);
    }
    const key = seriesKey(sample.name, sample.labels);
    if (series.has(key)) throw new ExpositionError(`${where}: series ${key} twice`);
    series.add(key);
    if (family.type === "counter" && !(sample.value >= 0)) throw new ExpositionError(`${where}: counter ${key} is ${sample.value}`);
    family.samples.push(sample);
  });
  const result = new Map<string, Family>();
  for (const family of families.values()) {
    if (family.type === "histogram") checkHistogram(family);
    result.set(family.name, { name: family.name, type: family.type, help: family.help, samples: family.samples });
  }
  return result;
}

/** Every series of the exposition, by seriesKey, with its value. */
export function seriesOf(families: ReadonlyMap<string, Family>): Map<string, number> {
  const out = new Map<string, number>();
  for (const family of families.values()) for (const s of family.samples) out.set(seriesKey(s.name, s.labels), s.value);
  return out;
}
