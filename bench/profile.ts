// Summarises a V8 .cpuprofile (node --cpu-prof): where the process spent its
// own time, by function and by area (a package, a Node.js internal module, the
// greeter's own files, GC).

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface ProfileRow {
  readonly name: string;
  readonly ms: number;
  /** Share of the busy (non-idle) time. */
  readonly share: number;
}

export interface ProfileSummary {
  readonly busyMs: number;
  readonly idleMs: number;
  readonly functions: readonly ProfileRow[];
  readonly areas: readonly ProfileRow[];
}

function shortUrl(url: string, root: string): string {
  let path = url.startsWith("file://") ? decodeURIComponent(url.slice("file://".length)) : url;
  if (path.startsWith(`${root}/`)) path = path.slice(root.length + 1);
  const nm = path.lastIndexOf("node_modules/");
  return nm === -1 ? path : path.slice(nm + "node_modules/".length);
}

function areaOf(frame: CallFrame, root: string): string {
  const { functionName, url } = frame;
  if (url === "") {
    if (functionName === "(garbage collector)") return "V8: garbage collector";
    if (functionName === "(program)") return "V8/native: (program)";
    if (functionName === "(idle)") return "(idle)";
    return `native: ${functionName || "(anonymous)"}`;
  }
  if (url.startsWith("node:")) {
    const parts = url.slice(5).split("/");
    return `node:${parts.slice(0, parts[0] === "internal" ? 2 : 1).join("/")}`;
  }
  const path = shortUrl(url, root);
  const nm = url.lastIndexOf("node_modules/");
  if (nm !== -1) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    const pkg = rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1] ?? ""}` : (rest[0] ?? "?");
    return `npm: ${pkg}`;
  }
  return `app: ${path}`;
}

export function summarise(profile: CpuProfile, root: string, top = 25): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i];
    if (id === undefined) continue;
    // A sample's duration is the gap to the next sample (as DevTools counts it).
    const us = deltas[i + 1] ?? 0;
    self.set(id, (self.get(id) ?? 0) + us);
  }
  const functions = new Map<string, number>();
  const areas = new Map<string, number>();
  let idle = 0;
  let busy = 0;
  for (const [id, us] of self) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) continue;
    const area = areaOf(frame, root);
    if (area === "(idle)") {
      idle += us;
      continue;
    }
    busy += us;
    areas.set(area, (areas.get(area) ?? 0) + us);
    const where = frame.url === "" ? "" : ` ${shortUrl(frame.url, root)}:${frame.lineNumber + 1}`;
    const name = `${frame.functionName || "(anonymous)"}${where}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
  }
  const rows = (map: Map<string, number>): ProfileRow[] =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, share: busy === 0 ? 0 : us / busy }));
  return { busyMs: busy / 1000, idleMs: idle / 1000, functions: rows(functions), areas: rows(areas) };
}

export function profileMarkdown(summary: ProfileSummary, title: string): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const table = (rows: readonly ProfileRow[], head: string): string[] => [
    `| ${head} | self ms | share of busy |`,
    "|---|--:|--:|",
    ...rows.map((r) => `| \`${r.name.replaceAll("|", "\\|")}\` | ${r.ms.toFixed(0)} | ${pct(r.share)} |`),
  ];
  return [
    `### ${title}`,
    "",
    `Busy ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms.`,
    "",
    ...table(summary.areas, "area"),
    "",
    ...table(summary.functions, "function"),
    "",
  ].join("\n");
}
