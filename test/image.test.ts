// The container image, proved without a Docker engine. Three parts:
//  1. the Dockerfile's promises, read from its text: multi-stage, Node 24 only,
//     the final stage runs `node .` as a numeric non-root user and holds only
//     package.json, production node_modules and dist (each checker is also
//     shown a tampered copy, to prove it can fail);
//  2. the final stage's filesystem rebuilt in a temp dir the way the Dockerfile
//     builds it (npm ci --omit=dev, the compiled dist), weighed, and searched
//     for devDependencies;
//  3. that tree run like the image runs it: read-only, as uid 1000, with no
//     writable HOME or TMPDIR; it must greet, exit 0 on SIGTERM, write nothing.
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { chmod, copyFile, cp, lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { post, sample } from "./support/greeter-server.ts";

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
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const [image = "", as, alias] = ins.args.split(/\s+/);
      stages.push({ index: stages.length, image, alias: as?.toUpperCase() === "AS" ? alias : undefined, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(ins); // before the first FROM only ARG may appear; not checked
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

/** The earlier stage the final stage copies `name` (e.g. node_modules, dist) from. */
function stageCopiedFrom(df: Dockerfile, name: string): Stage | undefined {
  const stage = finalStage(df);
  const copy = stage?.instructions.find((i) => i.keyword === "COPY" && copyOperands(i).sources.some((s) => path.posix.basename(s) === name));
  const from = copy?.flags.get("from");
  return stage !== undefined && from !== undefined ? stageNamed(df, from, stage.index) : undefined;
}

/** The last WORKDIR of a stage ("/" when none). */
function workdir(stage: Stage): string {
  let dir = "/";
  for (const ins of stage.instructions) if (ins.keyword === "WORKDIR") dir = path.posix.resolve(dir, ins.args);
  return dir;
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

/** The shell commands of a RUN, split on && || ; and newlines. */
function commandsOf(ins: Instruction): string[] {
  let text = ins.args;
  if (text.startsWith("[")) {
    const parsed: unknown = JSON.parse(text);
    text = Array.isArray(parsed) ? parsed.map(String).join(" ") : "";
  }
  return text.split(/&&|\|\||;|\n/).map((c) => c.trim().replace(/\s+/g, " ")).filter((c) => c !== "");
}

type NpmStep = "installs-dev" | "installs-prod" | "prunes-dev" | "other";

function npmStep(command: string): NpmStep {
  const m = /^npm\s+(ci|install|i|add|prune)\b(.*)$/.exec(command);
  if (m === null) return "other";
  const omitsDev = /--omit[= ]dev\b|--production\b|--only[= ]prod(uction)?\b/.test(m[2] ?? "");
  if (m[1] === "prune") return omitsDev ? "prunes-dev" : "other";
  return omitsDev ? "installs-prod" : "installs-dev";
}

// ---------------------------------------------------------------------------
// The checkers: each returns the problems it finds ([] for none).

type Checker = (df: Dockerfile) => string[];

const RUNTIME_FILES = new Set(["package.json", "node_modules", "dist"]);

const dockerfileChecks: Record<string, Checker> = {
  "multi-stage (at least two FROM)": (df) => (df.stages.length >= 2 ? [] : [`${df.stages.length} FROM: a single stage ships its build tools`]),

  "every FROM is a Node 24 image": (df) => {
    const problems: string[] = [];
    if (df.stages.length === 0) problems.push("no FROM at all");
    for (const stage of df.stages) {
      // FROM an earlier stage inherits that stage's base image.
      let image = stage.image;
      for (let base = stageNamed(df, image, stage.index); base !== undefined; base = stageNamed(df, image, base.index)) image = base.image;
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

  'final stage CMD is exactly ["node", "."]': (df) => {
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

  "final stage copies only package.json, node_modules and dist from a build stage": (df) => {
    const stage = finalStage(df);
    if (stage === undefined) return ["no stage"];
    const problems: string[] = [];
    const copied = new Set<string>();
    for (const ins of stage.instructions) {
      if (ins.keyword === "ADD") {
        problems.push(`ADD ${ins.args} (line ${ins.line}): the final stage takes nothing from outside the build stage`);
        continue;
      }
      if (ins.keyword !== "COPY") continue;
      const from = ins.flags.get("from");
      const source = from === undefined ? undefined : stageNamed(df, from, stage.index);
      if (source === undefined) {
        problems.push(`COPY ${ins.args} (line ${ins.line}) is not from an earlier build stage`);
        continue;
      }
      const base = workdir(source);
      for (const src of copyOperands(ins).sources) {
        const rel = path.posix.relative(base, path.posix.resolve(base, src));
        if (RUNTIME_FILES.has(rel)) copied.add(rel);
        else problems.push(`COPY --from=${from} ${src} (line ${ins.line}): only ${[...RUNTIME_FILES].join(", ")} belong in the image`);
      }
    }
    for (const needed of RUNTIME_FILES) if (!copied.has(needed)) problems.push(`final stage lacks ${needed}: node . cannot run`);
    return problems;
  },

  "the runtime user does not own the app's files": (df) => {
    const problems: string[] = [];
    for (const ins of finalStage(df)?.instructions ?? []) {
      if (ins.keyword !== "COPY" && ins.keyword !== "ADD") continue;
      const chown = ins.flags.get("chown");
      if (chown !== undefined && !/^(0|root)(:(0|root))?$/.test(chown)) problems.push(`--chown=${chown} (line ${ins.line}) makes the code writable by the process`);
      if (ins.flags.has("chmod")) problems.push(`--chmod (line ${ins.line}): keep the files root-owned and read-only for the process`);
    }
    return problems;
  },

  "dev dependencies are removed in the build stage": (df) => {
    const build = stageCopiedFrom(df, "node_modules");
    if (build === undefined) return ["node_modules is not copied from a build stage"];
    let state: "none" | "with-dev" | "production" = "none";
    for (const ins of build.instructions) {
      if (ins.keyword !== "RUN") continue;
      for (const command of commandsOf(ins)) {
        const step = npmStep(command);
        if (step === "installs-dev") state = "with-dev";
        else if (step === "installs-prod" || (step === "prunes-dev" && state !== "none")) state = "production";
      }
    }
    if (state === "none") return [`stage ${build.alias ?? build.index} never installs the dependencies`];
    if (state === "with-dev") return [`stage ${build.alias ?? build.index} keeps its dev dependencies: no npm prune --omit=dev (or npm ci --omit=dev) after the last install`];
    return [];
  },

  "final stage installs no dev dependencies": (df) => {
    const problems: string[] = [];
    for (const ins of finalStage(df)?.instructions ?? []) {
      if (ins.keyword !== "RUN") continue;
      for (const command of commandsOf(ins)) {
        if (npmStep(command) === "installs-dev") problems.push(`RUN ${command} (line ${ins.line}) installs dev dependencies into the image`);
      }
    }
    return problems;
  },

  "final stage sets NODE_ENV=production": (df) => {
    const env = (finalStage(df)?.instructions ?? []).filter((i) => i.keyword === "ENV");
    const set = env.some((i) => /(^|\s)NODE_ENV(=|\s+)"?production"?(\s|$)/.test(i.args));
    return set ? [] : ["final stage does not set ENV NODE_ENV=production"];
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
const replaceIn = (re: RegExp, to: string) => (text: string) => lineEdit(text, (ls) => ls.map((l) => l.replace(re, to)));
const replaceFrom = (which: "first" | "last", to: string) => (text: string) =>
  lineEdit(text, (ls) => {
    const froms = ls.flatMap((l, i) => (/^\s*FROM\s/i.test(l) ? [i] : []));
    const at = which === "first" ? froms[0] : froms.at(-1);
    return ls.map((l, i) => (i === at ? to : l));
  });
const onlyFinalStage = (text: string) => lineEdit(text, (ls) => ls.slice(ls.findLastIndex((l) => /^\s*FROM\s/i.test(l))));

const tamperings: Record<string, readonly (readonly [string, (text: string) => string])[]> = {
  "multi-stage (at least two FROM)": [["only the final stage", onlyFinalStage]],
  "every FROM is a Node 24 image": [
    ["final stage on node:22", replaceFrom("last", "FROM node:22-alpine")],
    ["build stage on debian", replaceFrom("first", "FROM debian:bookworm AS build")],
    ["final stage on node:lts", replaceFrom("last", "FROM node:lts-alpine")],
  ],
  "final stage runs as a numeric non-root USER": [
    ["no USER", dropLines(/^\s*USER\s/i)],
    ["USER node", appendLine("USER node")],
    ["USER 0", appendLine("USER 0")],
  ],
  'final stage CMD is exactly ["node", "."]': [
    ["npm start", appendLine('CMD ["npm", "start"]')],
    ["shell form", appendLine("CMD node .")],
    ["no CMD", dropLines(/^\s*CMD\s/i)],
    ["an ENTRYPOINT", appendLine('ENTRYPOINT ["sh", "-c"]')],
  ],
  "final stage copies only package.json, node_modules and dist from a build stage": [
    ["the TypeScript sources", appendLine("COPY --from=build /app/functions ./functions")],
    ["tsconfig from the context", appendLine("COPY tsconfig.json ./")],
    ["the tests", appendLine("COPY --from=build /app/test ./test")],
    ["ADD of the context", appendLine("ADD . .")],
    ["no dist", dropLines(/^\s*COPY\s.*\bdist\b/i)],
  ],
  "the runtime user does not own the app's files": [["--chown=node", appendLine("COPY --chown=node:node --from=build /app/dist ./dist")]],
  "dev dependencies are removed in the build stage": [["no npm prune", replaceIn(/\s*&&\s*npm prune --omit=dev[^\n]*/, "")]],
  "final stage installs no dev dependencies": [
    ["npm ci", appendLine("RUN npm ci")],
    ["npm install", appendLine("RUN npm install --no-audit")],
  ],
  "final stage sets NODE_ENV=production": [["no NODE_ENV", dropLines(/^\s*ENV\s+NODE_ENV/i)]],
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

interface LockEntry {
  readonly dev?: boolean;
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
}
type LockPackages = Readonly<Record<string, LockEntry>>;

const nameOfKey = (key: string): string => key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);

/**
 * Installed packages (package-lock keys, "node_modules/a/node_modules/b") that
 * should not be in a production tree: dev-only per the lock, or unknown to it.
 * Also lists the devDependencies that stay because production needs them too.
 */
function checkProductionTree(installed: readonly string[], lock: LockPackages, devDependencies: readonly string[]): { problems: string[]; kept: string[] } {
  const problems: string[] = [];
  for (const key of installed) {
    const entry = lock[key];
    if (entry === undefined) problems.push(`${key}: not in package-lock.json`);
    else if (entry.dev === true) problems.push(`${key}: a dev-only package${devDependencies.includes(nameOfKey(key)) ? " (a devDependency)" : ""}`);
  }
  const kept: string[] = [];
  for (const dev of devDependencies) {
    const here = installed.filter((key) => nameOfKey(key) === dev && lock[key]?.dev !== true);
    if (here.length === 0) continue;
    const needers = Object.entries(lock)
      .filter(([key, e]) => key !== "" && e.dev !== true && [e.dependencies, e.optionalDependencies, e.peerDependencies].some((d) => d !== undefined && dev in d))
      .map(([key]) => nameOfKey(key));
    kept.push(`${here.join(", ")} (needed by ${[...new Set(needers)].join(", ") || "?"})`);
  }
  return { problems, kept };
}

/** Every package directory under node_modules, as package-lock keys. */
async function installedPackages(dir: string, prefix = "node_modules"): Promise<string[]> {
  const found: string[] = [];
  const nm = path.join(dir, "node_modules");
  if (!existsSync(nm)) return found;
  for (const entry of await readdir(nm, { withFileTypes: true })) {
    if (entry.name.startsWith(".")) continue;
    const names = entry.name.startsWith("@") ? (await readdir(path.join(nm, entry.name))).map((n) => `${entry.name}/${n}`) : [entry.name];
    for (const name of names) {
      found.push(`${prefix}/${name}`);
      found.push(...(await installedPackages(path.join(nm, name), `${prefix}/${name}/node_modules`)));
    }
  }
  return found;
}

interface Weight {
  bytes: number;
  files: number;
}

/** Apparent size (what a layer tarball holds) and file count, optionally grouped. */
async function weigh(dir: string, group: (rel: string) => string = () => ""): Promise<Map<string, Weight>> {
  const totals = new Map<string, Weight>();
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        await walk(child);
      } else {
        const { size } = await lstat(path.join(dir, child));
        const key = group(child);
        const w = totals.get(key) ?? { bytes: 0, files: 0 };
        w.bytes += size;
        w.files += 1;
        totals.set(key, w);
      }
    }
  };
  await walk("");
  return totals;
}

const NPM_METADATA = "(.bin, .package-lock.json)";
const topPackage = (rel: string): string => {
  const [first = "", second = ""] = rel.split("/");
  if (first.startsWith(".")) return NPM_METADATA;
  return first.startsWith("@") ? `${first}/${second}` : first;
};
const sum = (ws: Iterable<Weight>): Weight => [...ws].reduce((a, w) => ({ bytes: a.bytes + w.bytes, files: a.files + w.files }), { bytes: 0, files: 0 });
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

/** Path → type, size, mode, mtime of everything under dir: what a write would change. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    const st = await lstat(path.join(dir, rel));
    out.set(rel, `${st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : "f"} ${st.size} ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs}`);
    if (st.isDirectory()) for (const name of await readdir(path.join(dir, rel))) await walk(rel === "" ? name : `${rel}/${name}`);
  };
  await walk("");
  return out;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** npm as the running `npm test` invoked it, else the one on PATH. */
function npmCommand(args: string[]): [string, string[]] {
  const cli = process.env["npm_execpath"];
  return cli !== undefined && /\.c?js$/.test(cli) ? [process.execPath, [cli, ...args]] : ["npm", args];
}

const RUN_AS = ["--reuid=1000", "--regid=1000", "--clear-groups"];

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

describe("the final stage's filesystem, rebuilt without Docker", () => {
  let tmp: string | undefined;
  let app = "";
  let home = "";
  let child: ChildProcess | undefined;
  let lock: LockPackages = {};
  let devDependencies: string[] = [];
  let main = "";

  before(async () => {
    const pkg = JSON.parse(await readFile(path.join(root, "package.json"), "utf8")) as { main?: string; devDependencies?: Record<string, string> };
    devDependencies = Object.keys(pkg.devDependencies ?? {});
    main = pkg.main ?? "index.js";
    lock = (JSON.parse(await readFile(path.join(root, "package-lock.json"), "utf8")) as { packages: LockPackages }).packages;

    tmp = await mkdtemp(path.join(tmpdir(), "greeter-image-"));
    await chmod(tmp, 0o755); // mkdtemp makes it 0700: uid 1000 must be able to enter
    app = path.join(tmp, "app");
    home = path.join(tmp, "home");
    await mkdir(app);
    await mkdir(home);

    // Build stage: package.json + lock, production dependencies only.
    await copyFile(path.join(root, "package.json"), path.join(app, "package.json"));
    await copyFile(path.join(root, "package-lock.json"), path.join(app, "package-lock.json"));
    const [cmd, args] = npmCommand(["ci", "--omit=dev", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"]);
    await run(cmd, args, { cwd: app, timeout: 120_000 });
    await rm(path.join(app, "package-lock.json")); // the final stage copies package.json only

    // dist: what the build stage compiles, i.e. the source dirs it COPYs from the context.
    const build = stageCopiedFrom(parseDockerfile(dockerfileText), "dist");
    const compiled = (build?.instructions ?? [])
      .filter((i) => i.keyword === "COPY" && !i.flags.has("from"))
      .flatMap((i) => copyOperands(i).sources)
      .map((s) => s.replace(/^\.\//, "").replace(/\/$/, ""))
      .filter((s) => existsSync(path.join(root, "dist", s)));
    assert.ok(compiled.includes("functions"), `no dist/functions: run npm run build first (npm test's pretest does)`);
    for (const dir of compiled) await cp(path.join(root, "dist", dir), path.join(app, "dist", dir), { recursive: true });
  });

  after(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    if (tmp === undefined) return;
    await run("chmod", ["-R", "u+w", tmp]).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  });

  it("weighs: the app layer is dist + production node_modules", async (t: TestContext) => {
    const modules = await weigh(path.join(app, "node_modules"), topPackage);
    const dist = sum((await weigh(path.join(app, "dist"))).values());
    const nm = sum(modules.values());
    const pkgJson = (await lstat(path.join(app, "package.json"))).size;
    const total = { bytes: nm.bytes + dist.bytes + pkgJson, files: nm.files + dist.files + 1 };
    t.diagnostic(`app layer: ${mb(total.bytes)} (${total.bytes} bytes) in ${total.files} files`);
    t.diagnostic(`node_modules: ${mb(nm.bytes)} (${nm.bytes} bytes) in ${nm.files} files, ${[...modules.keys()].filter((k) => k !== NPM_METADATA).length} top-level packages`);
    t.diagnostic(`dist: ${(dist.bytes / 1e3).toFixed(1)} kB (${dist.bytes} bytes) in ${dist.files} files`);
    const largest = [...modules].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 6);
    t.diagnostic(`largest packages: ${largest.map(([name, w]) => `${name} ${mb(w.bytes)}/${w.files} files`).join(", ")}`);
    assert.ok(nm.files > 0 && dist.files > 0);
    assert.ok(existsSync(path.join(app, main)), `${main} (package.json main, what node . runs) is missing from the tree`);
  });

  it("holds no devDependency unless production needs it too (per package-lock.json)", async (t: TestContext) => {
    const installed = await installedPackages(app);
    assert.ok(installed.length > 0);
    const { problems, kept } = checkProductionTree(installed, lock, devDependencies);
    assert.deepEqual(problems, []);
    for (const name of ["typescript", "autocannon", "faas-js-runtime", "kubernetes-models", "@types/express"]) {
      if (devDependencies.includes(name)) assert.ok(!installed.includes(`node_modules/${name}`), name);
    }
    if (kept.length > 0) t.diagnostic(`devDependencies also needed in production: ${kept.join("; ")}`);
    // The checker can fail: a dev-only package from the lock, and a stray one.
    const devOnly = Object.keys(lock).find((key) => key.startsWith("node_modules/") && lock[key]?.dev === true);
    assert.ok(devOnly !== undefined, "the lock has no dev-only package to tamper with");
    assert.notDeepEqual(checkProductionTree([...installed, devOnly], lock, devDependencies).problems, []);
    assert.notDeepEqual(checkProductionTree([...installed, "node_modules/left-behind"], lock, devDependencies).problems, []);
  });

  it("runs read-only as uid 1000 with no writable HOME or TMPDIR: greets, exits 0 on SIGTERM, writes nothing", { timeout: 30_000 }, async (t: TestContext) => {
    assert.ok(tmp !== undefined);
    let command = process.execPath;
    let prefix: string[] = [];
    if (process.getuid?.() === 0) {
      // Root ignores permission bits: drop to uid 1000 as the image's USER does.
      if (spawnSync("setpriv", ["--version"]).status !== 0) {
        t.diagnostic("setpriv (util-linux) not found: running as root, so only the before/after listing shows that nothing was written");
      } else {
        let node: string | undefined = process.execPath;
        // Judged from the permission bits: setpriv may still hold root's capabilities when it
        // execs, so a trial run would pass where a real uid 1000 could not reach the binary.
        const runsAs1000 = async (bin: string): Promise<boolean> =>
          (await openTo1000(bin)) && spawnSync("setpriv", [...RUN_AS, bin, "-e", "process.exit(process.getuid() === 1000 ? 0 : 1)"], { timeout: 10_000 }).status === 0;
        if (!(await runsAs1000(node))) {
          // e.g. a .tools/ under a 0700 home: give uid 1000 its own copy, outside the tree.
          node = path.join(tmp, "bin", "node");
          await mkdir(path.dirname(node));
          await copyFile(process.execPath, node);
          await chmod(node, 0o555);
          t.diagnostic(`uid 1000 cannot run ${process.execPath}: using a copy at ${node}`);
          if (!(await runsAs1000(node))) node = undefined;
        }
        if (node === undefined) {
          t.diagnostic("uid 1000 cannot run node even from a copy (no CAP_SETUID?): running as root, the listing still shows whether anything was written");
        } else {
          command = "setpriv";
          prefix = [...RUN_AS, node];
        }
      }
    }

    await run("chmod", ["-R", "a-w", app]);
    await chmod(home, 0o555);
    const beforeRun = await snapshot(tmp);

    const port = await freePort();
    const proc = spawn(command, [...prefix, "."], {
      cwd: app,
      env: { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: home, TMPDIR: home, NODE_ENV: "production", PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = proc;
    let stdout = "";
    let stderr = "";
    proc.stdout?.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    proc.stderr?.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const exited = once(proc, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
    let gone = false;
    void exited.then(() => (gone = true));

    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      if (gone) assert.fail(`exited with ${(await exited)[0]} before listening\nstdout: ${stdout}\nstderr: ${stderr}`);
      if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) break;
      if (i > 200) assert.fail(`not listening after 10 s\nstdout: ${stdout}\nstderr: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    if (prefix.length > 0) {
      const status = await readFile(`/proc/${proc.pid}/status`, "utf8");
      assert.match(status, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m, "the server does not run as uid 1000");
    }

    const { headers, body } = await sample("add-patrick-blue");
    const reply = await post(`${url}/`, headers, body);
    assert.equal(reply.status, 200, reply.text);
    assert.equal((reply.json() as { greeting?: unknown }).greeting, "welcome patrick to the team blue");

    proc.kill("SIGTERM");
    const [code, signal] = await exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, `stderr: ${stderr}`);
    assert.ok(stdout.includes('"msg":"welcome patrick to the team blue"'), stdout);
    assert.doesNotMatch(stderr, /EACCES|EROFS|EPERM|read-only file system/i);
    if (stderr !== "") t.diagnostic(`stderr: ${stderr.trim()}`);

    assert.deepEqual(await snapshot(tmp), beforeRun, "the process wrote to its tree, HOME or TMPDIR");
    t.diagnostic(`ran as ${prefix.length > 0 ? "uid 1000 via setpriv" : `uid ${process.getuid?.() ?? "?"}`}; nothing written under ${tmp}`);
  });
});
