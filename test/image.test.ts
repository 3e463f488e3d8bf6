// The container image, checked without a container engine, in `npm test`. The
// image itself is built and run by podman in test/container/image.test.ts
// (`npm run test:image`); this file keeps what that cannot check cheaply:
//  1. the Dockerfile's promises, read from its text: multi-stage, Node 24 only
//     (FROM ${BASE} through its default), the final stage runs `node .` as a
//     numeric non-root user and holds only package.json, the bundle
//     (dist/function) and a compile cache that the build stage pre-warmed, all
//     root-owned, and no node_modules at all; each checker is also shown
//     tampered copies, to prove it can fail;
//  2. the build stage's warm-up RUN, run as written on the bundle in a temp
//     tree: it fills the compile cache with one entry per start-up module, and
//     fails, with the status that says why, when node . crashes, never answers,
//     dies of SIGTERM or writes no entry (four broken images would take four
//     real builds).
// Dropped when the real image came: the rebuilt tree's weight, running it
// read-only as uid 1000, its compile-cache use and its Kubernetes chunk; the
// podman suite checks each of those on the image itself.
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, copyFile, cp, lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const dockerfilePath = path.join(root, "Dockerfile");

// ---------------------------------------------------------------------------
// A small Dockerfile reader: instructions, grouped into stages on FROM.

interface Instruction {
  readonly keyword: string; // upper case
  readonly flags: ReadonlyMap<string, string>; // --name=value ("" for a bare --name)
  readonly args: string; // what follows the flags
  readonly line: number; // 1-based, where the instruction starts
}

interface Stage {
  readonly index: number;
  readonly image: string;
  readonly alias: string | undefined;
  readonly instructions: readonly Instruction[];
}

interface Dockerfile {
  readonly stages: readonly Stage[];
}

function parseFlags(rest: string): { flags: Map<string, string>; args: string } {
  const flags = new Map<string, string>();
  let args = rest;
  for (let m = /^--([\w-]+)(?:=(\S*))?\s*/.exec(args); m !== null; m = /^--([\w-]+)(?:=(\S*))?\s*/.exec(args)) {
    flags.set(m[1] ?? "", m[2] ?? "");
    args = args.slice(m[0].length);
  }
  return { flags, args: args.trim() };
}

function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let logical = lines[i] ?? "";
    if (/^\s*(#.*)?$/.test(logical)) continue;
    // A trailing backslash continues the instruction; comment lines inside it are dropped.
    while (/\\\s*$/.test(logical) && i + 1 < lines.length) {
      logical = logical.replace(/\\\s*$/, " ");
      i++;
      const next = lines[i] ?? "";
      if (!/^\s*#/.test(next)) logical += next;
    }
    const m = /^\s*(\S+)\s*(.*)$/.exec(logical);
    if (m === null) continue;
    const { flags, args } = parseFlags((m[2] ?? "").trim());
    instructions.push({ keyword: (m[1] ?? "").toUpperCase(), flags, args, line: start + 1 });
  }
  const stages: { index: number; image: string; alias: string | undefined; instructions: Instruction[] }[] = [];
  // ARGs before the first FROM may be used in FROM lines: their defaults are what a plain build uses.
  const globalArgs = new Map<string, string>();
  const expand = (text: string): string =>
    text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => globalArgs.get(a ?? b ?? "") ?? "");
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const [image = "", as, alias] = ins.args.split(/\s+/);
      stages.push({ index: stages.length, image: expand(image), alias: as?.toUpperCase() === "AS" ? alias : undefined, instructions: [] });
    } else if (stages.length === 0 && ins.keyword === "ARG") {
      const eq = ins.args.indexOf("=");
      if (eq > 0) globalArgs.set(ins.args.slice(0, eq), ins.args.slice(eq + 1).replace(/^"|"$/g, ""));
    } else {
      stages.at(-1)?.instructions.push(ins);
    }
  }
  return { stages };
}

function finalStage(df: Dockerfile): Stage | undefined {
  return df.stages.at(-1);
}

function stageNamed(df: Dockerfile, ref: string, before: number): Stage | undefined {
  return df.stages.find((s) => s.index < before && (s.alias === ref || String(s.index) === ref));
}

/** The image a stage is really based on (FROM an earlier stage inherits that stage's base). */
function baseImage(df: Dockerfile, stage: Stage): string {
  let image = stage.image;
  for (let base = stageNamed(df, image, stage.index); base !== undefined; base = stageNamed(df, image, base.index)) image = base.image;
  return image;
}

/** WORKDIR in force before instruction `upTo` (default: at the end of the stage; "/" when none). */
function workdir(stage: Stage, upTo = stage.instructions.length): string {
  let dir = "/";
  for (const ins of stage.instructions.slice(0, upTo)) if (ins.keyword === "WORKDIR") dir = path.posix.resolve(dir, ins.args);
  return dir;
}

/** USER in force before instruction `upTo` (default: at the end of the stage; "0" when none). */
function userAt(stage: Stage, upTo = stage.instructions.length): string {
  let user = "0";
  for (const ins of stage.instructions.slice(0, upTo)) if (ins.keyword === "USER") user = ins.args;
  return user;
}

/** The uid of a USER value, as a number where it is numeric (root by name is 0). */
function uidOf(user: string): number | undefined {
  const name = user.split(":")[0] ?? "";
  if (name === "root") return 0;
  return /^\d+$/.test(name) ? Number(name) : undefined;
}

/** What one ENV sets, `KEY=value …` or the legacy `KEY value` form. */
function envPairs(ins: Instruction): [string, string][] {
  const pairs = [...ins.args.matchAll(/([A-Za-z_]\w*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)];
  if (pairs.length > 0) return pairs.map((p) => [p[1] ?? "", (p[2] ?? "").replace(/^(["'])(.*)\1$/, "$2")]);
  const m = /^(\S+)\s+(.*)$/.exec(ins.args);
  return m === null ? [] : [[m[1] ?? "", (m[2] ?? "").trim()]];
}

/** The ENV a stage sets. */
function envOf(stage: Stage): Map<string, string> {
  return new Map(stage.instructions.filter((i) => i.keyword === "ENV").flatMap(envPairs));
}

/** Sources and destination of a COPY or ADD, shell or JSON form. */
function copyOperands(ins: Instruction): { sources: string[]; dest: string } {
  let parts: string[];
  if (ins.args.startsWith("[")) {
    const parsed: unknown = JSON.parse(ins.args);
    parts = Array.isArray(parsed) ? parsed.map(String) : [];
  } else {
    parts = ins.args.split(/\s+/);
  }
  return { sources: parts.slice(0, -1), dest: parts.at(-1) ?? "" };
}

interface Copy {
  readonly ins: Instruction;
  readonly from: Stage | undefined; // undefined: the build context (or a stage/image that is not earlier)
  readonly source: string; // absolute in the source stage (as written for the context)
  readonly target: string; // absolute in the final stage
}

/** Every file a stage's COPY/ADD lines bring in, with where from and where to. */
function copiesOf(df: Dockerfile, stage: Stage): Copy[] {
  const out: Copy[] = [];
  stage.instructions.forEach((ins, at) => {
    if (ins.keyword !== "COPY" && ins.keyword !== "ADD") return;
    const fromRef = ins.flags.get("from");
    const from = fromRef === undefined ? undefined : stageNamed(df, fromRef, stage.index);
    const { sources, dest } = copyOperands(ins);
    const destDir = workdir(stage, at);
    const intoDir = sources.length > 1 || dest.endsWith("/") || dest === "." || dest === "./";
    for (const src of sources) {
      const source = from === undefined ? src : path.posix.resolve(workdir(from), src);
      const target = intoDir ? path.posix.resolve(destDir, dest, path.posix.basename(source)) : path.posix.resolve(destDir, dest);
      out.push({ ins, from, source, target });
    }
  });
  return out;
}

/** The shell text of a RUN (exec form joined with spaces). */
function runText(ins: Instruction): string {
  if (!ins.args.startsWith("[")) return ins.args;
  const parsed: unknown = JSON.parse(ins.args);
  return Array.isArray(parsed) ? parsed.map(String).join(" ") : "";
}

/** The shell commands of a RUN, split on && || ; and newlines. */
function commandsOf(ins: Instruction): string[] {
  return runText(ins)
    .split(/&&|\|\||;|\n/)
    .map((c) => c.trim().replace(/\s+/g, " "))
    .filter((c) => c !== "");
}

const installsPackages = (command: string): boolean =>
  /^(npm|pnpm|yarn)(\s+--?\S+)*\s+(ci|clean-install|install|i|add|install-test|it|install-ci-test)\b/.test(command) || /^yarn$/.test(command);

/** Index (in its stage) of the RUN that builds the bundle: `npm run build`. */
function buildRunIndex(stage: Stage): number {
  return stage.instructions.findLastIndex((i) => i.keyword === "RUN" && commandsOf(i).some((c) => /^npm run build\b/.test(c)));
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Where the cache is set and run: NODE_COMPILE_CACHE=<dir> on the same RUN as `node .`. */
function warmsCache(ins: Instruction, dir: string): boolean {
  const text = runText(ins);
  return (
    new RegExp(`(^|[\\s;&|{(])NODE_COMPILE_CACHE=(["']?)${escapeRe(dir)}/?\\2(?=[\\s;&|)}]|$)`).test(text) && /(^|[\s;&|{(])node\s+\.(?=[\s;&|)}]|$)/.test(text)
  );
}

/** The final stage's compile-cache folder (ENV NODE_COMPILE_CACHE), if set. */
const compileCacheDir = (df: Dockerfile): string | undefined => {
  const stage = finalStage(df);
  return stage === undefined ? undefined : envOf(stage).get("NODE_COMPILE_CACHE");
};

const isRootOwner = (chown: string): boolean => /^(0|root)(:(0|root))?$/.test(chown);

// ---------------------------------------------------------------------------
// The checkers: each returns the problems it finds ([] for none).

type Checker = (df: Dockerfile) => string[];

/** What the final stage takes from the build stage, relative to both WORKDIRs (besides the compile cache). */
const RUNTIME_FILES = ["package.json", "dist/function"] as const;

const dockerfileChecks: Record<string, Checker> = {
  "multi-stage (at least two FROM)": (df) => (df.stages.length >= 2 ? [] : [`${df.stages.length} FROM: a single stage ships its build tools`]),

  "every FROM is a Node 24 image": (df) => {
    const problems: string[] = [];
    if (df.stages.length === 0) problems.push("no FROM at all");
    for (const stage of df.stages) {
      const image = baseImage(df, stage);
      if (!/^(docker\.io\/)?(library\/)?node:24([.\-@].*)?$/.test(image)) problems.push(`stage ${stage.index} is FROM ${stage.image}, not node:24…`);
    }
    return problems;
  },

  "final stage runs as a numeric non-root USER": (df) => {
    const stage = finalStage(df);
    const user = stage?.instructions.filter((i) => i.keyword === "USER").at(-1);
    if (user === undefined) return ["final stage has no USER: it would run as root"];
    const m = /^(\d+)(?::(\d+))?$/.exec(user.args);
    if (m === null) return [`USER ${user.args} (line ${user.line}) is not numeric uid[:gid]: runAsNonRoot cannot verify a name`];
    const problems: string[] = [];
    if (m[1] === "0") problems.push(`USER ${user.args} (line ${user.line}) is root`);
    if (m[2] === "0") problems.push(`USER ${user.args} (line ${user.line}) has the root group`);
    return problems;
  },

  'final stage CMD is exactly ["node", "."], no ENTRYPOINT': (df) => {
    const stage = finalStage(df);
    const problems: string[] = [];
    if (stage?.instructions.some((i) => i.keyword === "ENTRYPOINT")) problems.push("final stage sets an ENTRYPOINT: the CMD would not be what runs");
    const cmd = stage?.instructions.filter((i) => i.keyword === "CMD").at(-1);
    if (cmd === undefined) return [...problems, "final stage has no CMD"];
    let argv: unknown;
    try {
      argv = JSON.parse(cmd.args);
    } catch {
      argv = undefined;
    }
    if (JSON.stringify(argv) !== JSON.stringify(["node", "."])) problems.push(`CMD ${cmd.args} (line ${cmd.line}) is not the exec form ["node", "."]`);
    return problems;
  },

  "final stage copies from the build stage only package.json, dist/function and the compile cache, each to its own path": (df) => {
    const stage = finalStage(df);
    if (stage === undefined) return ["no stage"];
    const problems: string[] = [];
    const wd = workdir(stage);
    const cache = compileCacheDir(df);
    const copied = new Set<string>();
    for (const c of copiesOf(df, stage)) {
      if (c.ins.keyword === "ADD") {
        problems.push(`ADD ${c.ins.args} (line ${c.ins.line}): the final stage takes nothing from outside the build stage`);
        continue;
      }
      if (c.from === undefined) {
        problems.push(`COPY ${c.ins.args} (line ${c.ins.line}) is not from an earlier build stage`);
        continue;
      }
      const rel = path.posix.relative(workdir(c.from), c.source);
      const allowed = (RUNTIME_FILES as readonly string[]).includes(rel) || (cache !== undefined && c.source === cache);
      if (!allowed) {
        problems.push(
          `COPY --from=${c.ins.flags.get("from")} ${c.source} (line ${c.ins.line}): only ${RUNTIME_FILES.join(", ")} and the compile cache belong in the image`,
        );
        continue;
      }
      const expected = c.source === cache ? cache : path.posix.join(wd, rel);
      if (c.target !== expected)
        problems.push(`COPY (line ${c.ins.line}) puts ${c.source} at ${c.target}, not ${expected}: package.json's "main" or NODE_COMPILE_CACHE would miss it`);
      copied.add(rel);
    }
    for (const needed of RUNTIME_FILES) if (!copied.has(needed)) problems.push(`final stage lacks ${needed}: node . cannot run`);
    return problems;
  },

  "nothing in the final stage is chowned to the runtime user": (df) => {
    const problems: string[] = [];
    for (const ins of finalStage(df)?.instructions ?? []) {
      if (ins.keyword !== "COPY" && ins.keyword !== "ADD") continue;
      const chown = ins.flags.get("chown");
      if (chown !== undefined && !isRootOwner(chown)) problems.push(`--chown=${chown} (line ${ins.line}) makes the files writable by the process`);
      if (ins.flags.has("chmod")) problems.push(`--chmod (line ${ins.line}): keep the files root-owned and read-only for the process`);
    }
    return problems;
  },

  "the final stage has no node_modules at all, so no dependency, dev or otherwise, can leak in": (df) => {
    const stage = finalStage(df);
    if (stage === undefined) return ["no stage"];
    const problems: string[] = [];
    // FROM an earlier stage would inherit its node_modules.
    if (stageNamed(df, stage.image, stage.index) !== undefined)
      problems.push(`the final stage is FROM ${stage.image}, an earlier stage: it inherits that stage's node_modules`);
    for (const c of copiesOf(df, stage)) {
      if (c.source.split("/").includes("node_modules")) {
        problems.push(`${c.ins.keyword} ${c.ins.args} (line ${c.ins.line}) brings in node_modules`);
        continue;
      }
      // A folder that holds the build stage's node_modules (its WORKDIR, where npm ci ran, or
      // one above), or the whole build context.
      const rel = c.from === undefined ? undefined : path.posix.relative(c.source, workdir(c.from));
      const holder = rel === undefined ? [".", "/"].includes(path.posix.normalize(c.source)) : !rel.startsWith("..");
      if (holder) problems.push(`${c.ins.keyword} ${c.ins.args} (line ${c.ins.line}) copies a folder that holds node_modules`);
    }
    return problems;
  },

  "final stage runs no npm install or npm ci": (df) => {
    const problems: string[] = [];
    for (const ins of finalStage(df)?.instructions ?? []) {
      if (ins.keyword !== "RUN") continue;
      for (const command of commandsOf(ins)) {
        if (installsPackages(command.replace(/^cd \S+ /, ""))) problems.push(`RUN ${command} (line ${ins.line}) installs packages into the image`);
      }
    }
    return problems;
  },

  "final stage sets NODE_ENV=production": (df) => {
    const stage = finalStage(df);
    return stage !== undefined && envOf(stage).get("NODE_ENV") === "production" ? [] : ["final stage does not set ENV NODE_ENV=production"];
  },

  "final stage sets NODE_COMPILE_CACHE to the cache it copies, root-owned, from the build stage": (df) => {
    const stage = finalStage(df);
    if (stage === undefined) return ["no stage"];
    const cache = compileCacheDir(df);
    if (cache === undefined) return ["final stage does not set ENV NODE_COMPILE_CACHE: the pre-warmed cache would not be read"];
    if (!path.posix.isAbsolute(cache)) return [`NODE_COMPILE_CACHE=${cache} is not an absolute path`];
    const copy = copiesOf(df, stage).find((c) => c.target === cache);
    if (copy === undefined) return [`nothing is copied to ${cache}: NODE_COMPILE_CACHE names an empty place`];
    const problems: string[] = [];
    if (copy.from === undefined) problems.push(`${cache} (line ${copy.ins.line}) is not copied from a build stage`);
    if (copy.source !== cache) problems.push(`${cache} is copied from ${copy.source} (line ${copy.ins.line}), not from the same path in the build stage`);
    // The warm-up wrote it as the runtime user; make root own it, whatever the build stage's owners.
    const chown = copy.ins.flags.get("chown");
    if (chown === undefined || !isRootOwner(chown))
      problems.push(`COPY of ${cache} (line ${copy.ins.line}) lacks --chown=0:0: the runtime user, who wrote it in the build stage, would own it`);
    return problems;
  },

  "the build stage fills that cache by running node . with the final stage's base image, WORKDIR and USER": (df) => {
    const stage = finalStage(df);
    const cache = compileCacheDir(df);
    if (stage === undefined || cache === undefined) return ["no NODE_COMPILE_CACHE in the final stage"];
    const copy = copiesOf(df, stage).find((c) => c.target === cache);
    const build = copy?.from;
    if (build === undefined) return [`${cache} is not copied from a build stage`];
    const problems: string[] = [];
    const bundled = buildRunIndex(build);
    const at = build.instructions.findIndex((ins, i) => i > bundled && ins.keyword === "RUN" && warmsCache(ins, cache));
    if (bundled < 0) problems.push(`stage ${build.alias ?? build.index} never runs npm run build`);
    if (at < 0) return [...problems, `no RUN in stage ${build.alias ?? build.index} after npm run build runs node . with NODE_COMPILE_CACHE=${cache}`];
    const line = build.instructions[at]?.line;
    // Node keeps an entry only for the same Node build, file path and uid (it names a subfolder after the uid).
    if (baseImage(df, build) !== baseImage(df, stage))
      problems.push(`the cache is made on ${baseImage(df, build)} but used on ${baseImage(df, stage)}: another Node build rejects it`);
    if (workdir(build, at) !== workdir(stage))
      problems.push(`the warm-up (line ${line}) runs in ${workdir(build, at)}, the image in ${workdir(stage)}: entries are keyed by the file's absolute path`);
    const warmUid = uidOf(userAt(build, at));
    const runUid = uidOf(userAt(stage));
    if (warmUid === undefined || warmUid !== runUid)
      problems.push(
        `the warm-up (line ${line}) runs as USER ${userAt(build, at)}, the image as ${userAt(stage)}: Node looks for the cache in a subfolder named after the uid`,
      );
    return problems;
  },
};

// Tampering helpers for the negative cases: each must actually change the text.
function lineEdit(text: string, edit: (lines: string[]) => string[]): string {
  const out = edit(text.split("\n")).join("\n");
  assert.notEqual(out, text, "the tampering did not change the Dockerfile: update the test");
  return out;
}
const appendLine = (line: string) => (text: string) => lineEdit(text, (ls) => [...ls, line]);
const dropLines = (re: RegExp) => (text: string) => lineEdit(text, (ls) => ls.filter((l) => !re.test(l)));
const dropFirstLine = (re: RegExp) => (text: string) =>
  lineEdit(text, (ls) => {
    const at = ls.findIndex((l) => re.test(l));
    return ls.filter((_, i) => i !== at);
  });
const replaceIn = (re: RegExp, to: string) => (text: string) => lineEdit(text, (ls) => ls.map((l) => l.replace(re, to)));
const replaceFrom = (which: "first" | "last", to: string) => (text: string) =>
  lineEdit(text, (ls) => {
    const froms = ls.flatMap((l, i) => (/^\s*FROM\s/i.test(l) ? [i] : []));
    const at = which === "first" ? froms[0] : froms.at(-1);
    return ls.map((l, i) => (i === at ? to : l));
  });
const replaceLast = (re: RegExp, to: string) => (text: string) =>
  lineEdit(text, (ls) => {
    const at = ls.findLastIndex((l) => re.test(l));
    return ls.map((l, i) => (i === at ? to : l));
  });
const onlyFinalStage = (text: string) => lineEdit(text, (ls) => ls.slice(ls.findLastIndex((l) => /^\s*FROM\s/i.test(l))));

const tamperings: Record<string, readonly (readonly [string, (text: string) => string])[]> = {
  "multi-stage (at least two FROM)": [["only the final stage", onlyFinalStage]],
  "every FROM is a Node 24 image": [
    ["final stage on node:22", replaceFrom("last", "FROM node:22-alpine")],
    ["build stage on debian", replaceFrom("first", "FROM debian:bookworm AS build")],
    ["final stage on node:lts", replaceFrom("last", "FROM node:lts-alpine")],
    ["BASE defaults to node:22", replaceIn(/^ARG BASE=node:24-alpine$/m, "ARG BASE=node:22-alpine")],
  ],
  "final stage runs as a numeric non-root USER": [
    ["no USER", dropLines(/^\s*USER\s/i)],
    ["USER node", appendLine("USER node")],
    ["USER 0", appendLine("USER 0")],
  ],
  'final stage CMD is exactly ["node", "."], no ENTRYPOINT': [
    ["npm start", appendLine('CMD ["npm", "start"]')],
    ["shell form", appendLine("CMD node .")],
    ["no CMD", dropLines(/^\s*CMD\s/i)],
    ["an ENTRYPOINT", appendLine('ENTRYPOINT ["sh", "-c"]')],
  ],
  "final stage copies from the build stage only package.json, dist/function and the compile cache, each to its own path": [
    ["the TypeScript sources", appendLine("COPY --from=build /app/functions ./functions")],
    ["tsconfig from the context", appendLine("COPY tsconfig.json ./")],
    ["tsconfig from the build stage", appendLine("COPY --from=build /app/tsconfig.json ./")],
    ["the tests", appendLine("COPY --from=build /app/test ./test")],
    ["ADD of the context", appendLine("ADD . .")],
    ["all of dist (tsc's output too)", replaceIn(/\/app\/dist\/function \.\/dist\/function/, "/app/dist ./dist")],
    ["dist/function elsewhere", replaceIn(/\/app\/dist\/function \.\/dist\/function/, "/app/dist/function ./function")],
    ["no dist/function", dropLines(/^\s*COPY\s.*\bdist\/function\b/i)],
    ["no package.json", dropLines(/^\s*COPY\s.*\bpackage\.json\b.*\.\/package\.json/i)],
  ],
  "nothing in the final stage is chowned to the runtime user": [
    ["--chown=node", appendLine("COPY --chown=node:node --from=build /app/dist/function ./dist/function")],
    ["the cache chowned to 1000", replaceIn(/--chown=0:0/, "--chown=1000:1000")],
    ["--chmod", appendLine("COPY --chmod=0777 --from=build /app/package.json ./package.json")],
  ],
  "the final stage has no node_modules at all, so no dependency, dev or otherwise, can leak in": [
    ["node_modules copied", appendLine("COPY --from=build /app/node_modules ./node_modules")],
    ["a package copied", appendLine("COPY --from=build /app/node_modules/express ./node_modules/express")],
    ["the whole build WORKDIR", appendLine("COPY --from=build /app ./")],
    ["the build root", appendLine("COPY --from=build / /")],
    ["the final stage FROM the build stage", replaceFrom("last", "FROM build")],
  ],
  "final stage runs no npm install or npm ci": [
    ["npm ci --omit=dev", appendLine("RUN npm ci --omit=dev")],
    ["npm install", appendLine("RUN npm install --no-audit")],
    ["npm i after cd", appendLine("RUN cd /app && npm i express")],
  ],
  "final stage sets NODE_ENV=production": [
    ["no NODE_ENV", dropLines(/^\s*ENV\s+NODE_ENV/i)],
    ["NODE_ENV=development", replaceIn(/NODE_ENV=production$/, "NODE_ENV=development")],
  ],
  "final stage sets NODE_COMPILE_CACHE to the cache it copies, root-owned, from the build stage": [
    ["no ENV NODE_COMPILE_CACHE", dropLines(/^\s*ENV\s+NODE_COMPILE_CACHE/i)],
    ["ENV pointing elsewhere", replaceIn(/^(\s*ENV\s+NODE_COMPILE_CACHE=).*$/i, "$1/tmp/compile-cache")],
    ["the cache not copied", dropLines(/^\s*COPY\s.*compile-cache/i)],
    ["the cache copied without --chown=0:0", replaceIn(/--chown=0:0 /, "")],
  ],
  "the build stage fills that cache by running node . with the final stage's base image, WORKDIR and USER": [
    ["no node . in the warm-up", replaceIn(/\bnode \. &/, "node --version &")],
    ["the warm-up without NODE_COMPILE_CACHE", replaceIn(/NODE_COMPILE_CACHE=\S+ (node \. &)/, "$1")],
    ["the warm-up as root", dropFirstLine(/^\s*USER\s/i)],
    ["the final stage on another base", replaceFrom("last", "FROM node:24-bookworm-slim")],
    ["the final stage in another WORKDIR", replaceLast(/^\s*WORKDIR\s/i, "WORKDIR /srv")],
  ],
};

const dockerfileText = await readFile(dockerfilePath, "utf8");

describe("Dockerfile: what it promises, read from its text", () => {
  const text = dockerfileText;
  const dockerfile = parseDockerfile(text);

  for (const [name, check] of Object.entries(dockerfileChecks)) {
    it(name, () => {
      assert.deepEqual(check(dockerfile), []);
      const cases = tamperings[name];
      assert.ok(cases !== undefined && cases.length > 0, `no tampered case for ${name}`);
      for (const [what, tamper] of cases) {
        assert.notDeepEqual(check(parseDockerfile(tamper(text))), [], `${what}: the checker should reject it`);
      }
    });
  }
});

// ---------------------------------------------------------------------------
// The final stage's filesystem, rebuilt.

interface Weight {
  bytes: number;
  files: number;
}

/** Apparent size (what a layer tarball holds) of every file under dir, by relative path. */
async function filesUnder(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(child);
      else out.set(child, (await lstat(path.join(dir, child))).size);
    }
  };
  await walk("");
  return out;
}

const sum = (sizes: Iterable<number>): Weight => [...sizes].reduce((a, b) => ({ bytes: a.bytes + b, files: a.files + 1 }), { bytes: 0, files: 0 });

/** node_modules folders in dir or any folder above it: what Node's resolution would look in. */
function nodeModulesAbove(dir: string): string[] {
  const found: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, "node_modules"))) found.push(path.join(d, "node_modules"));
    if (d === path.dirname(d)) return found;
  }
}

const RUN_AS = (uid: number, gid: number): string[] => [`--reuid=${uid}`, `--regid=${gid}`, "--clear-groups"];

/** Whether uid 1000 (gid 1000, no other groups) may reach and run a file, by the permission bits. */
async function openTo1000(file: string): Promise<boolean> {
  const allows = (st: { uid: number; gid: number; mode: number }, bits: number): boolean => {
    const shift = st.uid === 1000 ? 6 : st.gid === 1000 ? 3 : 0;
    return ((st.mode >> shift) & bits) === bits;
  };
  const real = await realpath(file);
  for (let dir = path.dirname(real); ; dir = path.dirname(dir)) {
    if (!allows(await stat(dir), 0o1)) return false;
    if (dir === path.dirname(dir)) break;
  }
  return allows(await stat(real), 0o5);
}

/** `from` (an absolute path of the image) rewritten to `to` wherever it stands as a path in a shell line. */
function mapPath(text: string, from: string, to: string): string {
  return text.replace(new RegExp(`(?<=^|[\\s"'=:])${escapeRe(from)}(?=/|[\\s"';:)&|]|$)`, "g"), to);
}

/** A stand-in for `node .` in the warm-up RUN, and how that RUN must then end. */
interface FakeNode {
  readonly body: string; // shell, run for `node .`
  readonly code: number;
  readonly stderr?: RegExp;
  readonly edit?: (line: string) => string; // applied to the RUN's text
}

interface Outcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

describe("the build stage's warm-up RUN, run on the bundle in a temp tree", () => {
  const dockerfile = parseDockerfile(dockerfileText);
  const final = finalStage(dockerfile);
  const cacheDir = compileCacheDir(dockerfile);
  let tmp: string | undefined;
  let app = "";
  let home = "";
  let main = "";
  const children = new Map<ChildProcess, boolean>(); // → whether it leads a process group of its own

  // How node runs "as the image": uid 1000 via setpriv when we are root, else ourselves.
  const root0 = process.getuid?.() === 0;
  let runtimeUid = 1000;
  let runtimeGid = 1000;
  let node = process.execPath;
  let asUser: "setpriv" | "self" = "self";
  const notes: string[] = [];

  // The build stage's RUN lines after `npm run build`, run in the rebuilt tree.
  let warmUp: Outcome | undefined;
  let tamperedWarmUps: Promise<[string, FakeNode, Outcome][]> | undefined;

  /** The final stage's absolute path in the rebuilt tree. */
  const inApp = (p: string): string => {
    const wd = final === undefined ? "/" : workdir(final);
    const rel = path.posix.relative(wd, p);
    assert.ok(!rel.startsWith(".."), `${p} is outside the final stage's WORKDIR ${wd}`);
    return path.join(app, rel);
  };

  /** Runs a shell line (sh -c), in its own process group so `after` can end what it started. */
  const shell = (line: string, opts: { cwd: string; env: Record<string, string>; uid?: number; gid?: number }): Promise<Outcome> => {
    const t0 = performance.now();
    const asOther = opts.uid !== undefined && root0 && opts.uid !== 0;
    const [cmd, args] = asOther ? ["setpriv", [...RUN_AS(opts.uid ?? 0, opts.gid ?? opts.uid ?? 0), "/bin/sh", "-c", line]] : ["/bin/sh", ["-c", line]];
    const proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    children.set(proc, true);
    let stdout = "";
    let stderr = "";
    proc.stdout?.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    proc.stderr?.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    return new Promise((resolve) => {
      proc.on("close", (code, signal) => {
        resolve({ code, signal, stdout, stderr, ms: performance.now() - t0 });
      });
    });
  };

  before(async () => {
    assert.ok(final !== undefined, "no final stage");
    assert.ok(cacheDir !== undefined, "the final stage sets no NODE_COMPILE_CACHE");
    const pkg = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as { main?: string };
    main = pkg.main ?? "index.js";

    tmp = await mkdtemp(path.join(tmpdir(), "greeter-image-"));
    await chmod(tmp, 0o755); // mkdtemp makes it 0700: uid 1000 must be able to enter
    app = path.join(tmp, "app");
    home = path.join(tmp, "home");
    await mkdir(app);
    await mkdir(home);
    assert.deepEqual(nodeModulesAbove(app), [], "a node_modules above the temp dir: Node could resolve packages the image does not have");

    // Who runs node. Root ignores permission bits: drop to the image's uid as its USER does.
    const runtimeUser = userAt(final);
    runtimeUid = uidOf(runtimeUser) ?? 1000;
    runtimeGid = Number(runtimeUser.split(":")[1] ?? runtimeUid);
    if (root0) {
      if (spawnSync("setpriv", ["--version"]).status !== 0) {
        notes.push("setpriv (util-linux) not found: running as root, so only the before/after listing shows that nothing was written");
      } else {
        // Judged from the permission bits: setpriv may still hold root's capabilities when it
        // execs, so a trial run would pass where a real uid 1000 could not reach the binary.
        const runsAs = async (bin: string): Promise<boolean> =>
          (await openTo1000(bin)) &&
          spawnSync("setpriv", [...RUN_AS(runtimeUid, runtimeGid), bin, "-e", `process.exit(process.getuid() === ${runtimeUid} ? 0 : 1)`], { timeout: 10_000 })
            .status === 0;
        if (!(await runsAs(node))) {
          // e.g. a .tools/ under a 0700 home: give uid 1000 its own copy, outside the tree.
          node = path.join(tmp, "bin", "node");
          await mkdir(path.dirname(node));
          await copyFile(process.execPath, node);
          await chmod(node, 0o555);
          notes.push(`uid ${runtimeUid} cannot run ${process.execPath}: using a copy at ${node}`);
        }
        if (await runsAs(node)) asUser = "setpriv";
        else notes.push(`uid ${runtimeUid} cannot run node even from a copy (no CAP_SETUID?): running as root`);
      }
    } else {
      notes.push(`not root: running as uid ${process.getuid?.() ?? "?"}, ownership is not reproduced`);
    }
    const nodeDir = path.dirname(node);

    // 1. COPY --from=build: package.json and dist/function from the repository (npm test's
    // pretest builds dist/function); the build stage and the image share the WORKDIR, so one tree.
    const copies = copiesOf(dockerfile, final);
    for (const c of copies) {
      if (c.source === cacheDir || c.from === undefined) continue;
      const rel = path.posix.relative(workdir(c.from), c.source);
      assert.ok(existsSync(path.join(root, rel)), `${rel} is missing: run npm run build first (npm test's pretest does)`);
      await cp(path.join(root, rel), inApp(c.target), { recursive: true });
    }
    assert.ok(existsSync(path.join(app, main)), `${main} (package.json main, what node . runs) is missing from the tree`);

    // 2. The build stage's instructions after `npm run build`, as written: RUN lines as the
    // USER in force, in its WORKDIR, with /app mapped onto the temp tree.
    const cacheCopy = copies.find((c) => c.source === cacheDir && c.target === cacheDir);
    assert.ok(cacheCopy?.from !== undefined, `${cacheDir} is not copied from a build stage`);
    const build = cacheCopy.from;
    const buildWd = workdir(build);
    const shimDir = path.join(tmp, "shim");
    if (!root0) {
      // chown needs root: a stand-in that does nothing.
      await mkdir(shimDir);
      await writeFile(path.join(shimDir, "chown"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    }
    const basePath = `${root0 ? "" : `${shimDir}:`}${nodeDir}:/usr/local/bin:/usr/bin:/bin`;
    // A /tmp of the build's own, world-writable as /tmp is: the warm-up writes its kubeconfig there (mktemp).
    const buildTmp = path.join(tmp, "build-tmp");
    await mkdir(buildTmp);
    await chmod(buildTmp, 0o1777);
    const buildEnv = { PATH: basePath, HOME: home, TMPDIR: buildTmp };
    const steps = build.instructions.slice(buildRunIndex(build) + 1);
    assert.ok(
      steps.some((i) => i.keyword === "RUN" && warmsCache(i, cacheDir)),
      "no warm-up RUN after npm run build",
    );
    const warmUpText = steps.find((i) => i.keyword === "RUN" && warmsCache(i, cacheDir));
    // The same warm-up with a node . that fails in each way it can: its RUN must fail, with
    // the status (and message) that says why. Every other node command of the RUN (finding a
    // free port, waiting for /healthz) runs the real node. Beside the real warm-up, in
    // scratch trees of their own.
    const realNode = process.execPath;
    // A server that answers /healthz and caches nothing (Node would cache even -e code).
    // The add event is answered 503, as the function does with no API server behind its kubeconfig.
    const serve = (onTerm: string, addStatus = 503): string =>
      `exec env -u NODE_COMPILE_CACHE '${realNode}' -e 'require("node:http").createServer((q, s) => { s.statusCode = q.method === "POST" ? ${addStatus} : 200; s.end(); }).listen(Number(process.env.PORT), process.env.HOST); ${onTerm}'`;
    const fakes: Record<string, FakeNode> = {
      "node crashes at start": { body: "exit 1", code: 1, stderr: /node \. exited before it answered \/healthz/ },
      "node never answers /healthz (the RUN's 60 s cut to 1 s)": {
        body: `exec '${realNode}' -e 'setInterval(() => {}, 1000)'`,
        code: 1,
        stderr: /node \. did not answer \/healthz within 1 s/,
        edit: (line) => line.replace(/("\$pid") 60;/, "$1 1;"),
      },
      "node dies of SIGTERM": { body: serve(""), code: 143 },
      // Without a cluster behind the kubeconfig the function answers 503; a 200 means the Kubernetes chunk was never loaded.
      "node answers the add event without reaching its Kubernetes client": {
        body: serve('process.on("SIGTERM", () => process.exit(0));', 200),
        code: 1,
        stderr: /the warm-up add event was answered 200, not 503/,
      },
      // As Node does when it starts with NODE_COMPILE_CACHE: the subfolder, and then no entry in it.
      "node exits 0 but writes no cache entry": {
        body: `mkdir "$NODE_COMPILE_CACHE/v0-cache-1000"; ${serve('process.on("SIGTERM", () => process.exit(0));')}`,
        code: 1,
      },
    };
    tamperedWarmUps = Promise.all(
      Object.entries(fakes).map(async ([what, fake], i): Promise<[string, FakeNode, Outcome]> => {
        assert.ok(tmp !== undefined && warmUpText !== undefined);
        const scratch = path.join(tmp, `fake-${i}`);
        const scratchApp = path.join(scratch, "app");
        await mkdir(path.join(scratch, "bin"), { recursive: true });
        await mkdir(path.join(scratchApp, path.posix.relative(buildWd, cacheDir)), { recursive: true });
        await writeFile(path.join(scratch, "bin", "node"), `#!/bin/sh\nif [ "$1" != "." ]; then exec '${realNode}' "$@"; fi\n${fake.body}\n`, { mode: 0o755 });
        const line = mapPath(runText(warmUpText), buildWd, scratchApp);
        const edited = fake.edit?.(line) ?? line;
        if (fake.edit !== undefined) assert.notEqual(edited, line, `${what}: the edit did not change the RUN: update the test`);
        return [what, fake, await shell(edited, { cwd: scratchApp, env: { ...buildEnv, PATH: `${path.join(scratch, "bin")}:/usr/bin:/bin` } })];
      }),
    );
    tamperedWarmUps.catch(() => undefined); // awaited in its test; not unhandled if before() fails first
    let user = userAt(build, buildRunIndex(build) + 1);
    let cwd = workdir(build, buildRunIndex(build) + 1);
    const env: Record<string, string> = { ...buildEnv };
    for (const ins of steps) {
      if (ins.keyword === "USER") user = ins.args;
      else if (ins.keyword === "WORKDIR") cwd = path.posix.resolve(cwd, ins.args);
      else if (ins.keyword === "ENV") for (const [k, v] of envPairs(ins)) env[k] = mapPath(v, buildWd, app);
      else if (ins.keyword === "RUN") {
        const uid = uidOf(user);
        assert.ok(uid !== undefined, `USER ${user} (line ${ins.line}): the test only knows numeric users`);
        const gid = Number(user.split(":")[1] ?? uid);
        const outcome = await shell(mapPath(runText(ins), buildWd, app), { cwd: inApp(cwd), env, uid, gid });
        if (warmsCache(ins, cacheDir)) warmUp = outcome;
        assert.equal(outcome.code, 0, `RUN (line ${ins.line}) failed: ${outcome.code ?? outcome.signal}\nstdout: ${outcome.stdout}\nstderr: ${outcome.stderr}`);
      }
    }

    // 3. COPY --chown of the cache, then keep only what the final stage's COPY lines take.
    const chown = cacheCopy.ins.flags.get("chown");
    if (chown !== undefined && root0) await run("chown", ["-R", chown, inApp(cacheDir)]);
    const kept = copies.map((c) => path.relative(app, inApp(c.target)));
    for (const file of (await filesUnder(app)).keys()) {
      if (!kept.some((k) => file === k || file.startsWith(`${k}/`))) await rm(path.join(app, file));
    }

    // Read-only, as readOnlyRootFilesystem makes it.
    await run("chmod", ["-R", "a-w", app]);
    await chmod(home, 0o555);
  });

  after(async () => {
    for (const [child, group] of children) {
      if (child.pid === undefined) continue;
      try {
        // A RUN line's shell has its own process group: end the node it started too.
        if (group) process.kill(-child.pid, "SIGKILL");
        else if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    if (tmp === undefined) return;
    await run("chmod", ["-R", "u+w", tmp]).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  });

  /**
   * The start-up path's modules as file URLs, sorted: every .mjs of the bundle but the lazily
   * loaded ones, the Kubernetes chunk (first API call) and Node's process metrics (first scrape).
   */
  const lazyChunks = ["kube-client-", "process-metrics-"];
  const startupModules = async (): Promise<string[]> => {
    const dir = path.join(app, path.dirname(main));
    const names = (await readdir(dir)).filter((f) => f.endsWith(".mjs"));
    for (const lazy of lazyChunks) assert.equal(names.filter((f) => f.startsWith(lazy)).length, 1, `no ${lazy} chunk among ${names.join(", ")}`);
    return names
      .filter((f) => !lazyChunks.some((lazy) => f.startsWith(lazy)))
      .map((f) => new URL(`file://${path.join(dir, f)}`).href)
      .sort();
  };

  it("the build stage's warm-up RUN fills the compile cache, lazily loaded chunks included, and fails when node . crashes, never answers /healthz, never reaches its Kubernetes client, does not exit 0, or writes no entry", async (t: TestContext) => {
    for (const note of notes) t.diagnostic(note);
    assert.ok(warmUp !== undefined && cacheDir !== undefined);
    assert.equal(warmUp.code, 0, warmUp.stderr);
    const files = await filesUnder(inApp(cacheDir));
    // One entry per module: the start-up path's, and the chunks the add event and GET /metrics loaded.
    assert.equal(files.size, (await startupModules()).length + lazyChunks.length, `cache entries: ${[...files.keys()].join(", ")}`);
    // Node names the subfolder <version>-<arch>-<V8 tag>-<uid>: made for the image's user.
    const tags = new Set([...files.keys()].map((f) => f.split("/")[0] ?? ""));
    const uid = asUser === "setpriv" ? runtimeUid : (process.getuid?.() ?? runtimeUid);
    assert.equal(tags.size, 1, `cache subfolders: ${[...tags].join(", ")}`);
    for (const tag of tags)
      assert.match(tag, new RegExp(`^${escapeRe(process.version)}-${process.arch}-[0-9a-f]+-${uid}$`), `a cache made for another Node or uid: ${tag}`);
    const w = sum(files.values());
    t.diagnostic(`warm-up RUN: exit 0 after ${(warmUp.ms / 1000).toFixed(1)} s; cache ${[...tags].join(", ")}: ${w.files} entries, ${w.bytes} bytes`);
    const tampered = await tamperedWarmUps;
    assert.equal(tampered?.length, 5);
    for (const [what, fake, outcome] of tampered ?? []) {
      assert.equal(outcome.code, fake.code, `${what}: the warm-up RUN should exit ${fake.code}\n${outcome.stderr}`);
      if (fake.stderr !== undefined) assert.match(outcome.stderr, fake.stderr, what);
      t.diagnostic(`${what}: the warm-up RUN exits ${outcome.code ?? outcome.signal} after ${(outcome.ms / 1000).toFixed(1)} s`);
    }
  });
});
