// The cluster's node: one set of namespaces (network, mount, PID) created by
// this process, a cgroup of its own under each cgroup v1 controller, and a state
// folder; every component runs inside (nsenter). One cluster per machine (a
// lock); a crashed run's leftovers are cleaned before a new one starts; teardown
// kills the namespace's PID 1 (the kernel then kills every process in it,
// containers included), removes the cgroups and the state folder, and nothing
// else is left: the mounts and network devices died with their namespaces.
// test/cluster/node-init.sh sets the namespaces up.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { repoRoot, run, spawnTracked, waitFor, type Proc, type RunResult } from "../e2e/control-plane.ts";

/** Fixed per machine, like the namespace's address ranges: one cluster at a time (the lock). */
export const STATE = process.env["GREETER_CLUSTER_STATE"] ?? "/var/tmp/member-greeter-cluster";
export const CGROUP = "member-greeter-cluster";
const CGROUP_ROOT = "/sys/fs/cgroup";
const LOCK = path.join(homedir(), ".cache", "member-greeter", "cluster.lock");

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The cgroup hierarchies mounted here: v1 (cpu, memory, ..., name=systemd) and the cgroup2 one (`unified`, where runc and the kubelet also make cgroups). */
function controllers(): string[] {
  return readdirSync(CGROUP_ROOT).filter((c) => {
    const dir = path.join(CGROUP_ROOT, c);
    try {
      return statSync(dir).isDirectory() && !statSync(dir).isSymbolicLink() && existsSync(path.join(dir, "cgroup.procs"));
    } catch {
      return false;
    }
  });
}

/** Every cgroup under ours, deepest first. */
function ourCgroups(controller: string): string[] {
  const top = path.join(CGROUP_ROOT, controller, CGROUP);
  if (!existsSync(top)) return [];
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(path.join(dir, entry.name));
    found.push(dir);
  };
  walk(top);
  return found;
}

function pidsIn(dir: string): number[] {
  try {
    return readFileSync(path.join(dir, "cgroup.procs"), "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map(Number);
  } catch {
    return [];
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose mount namespace is `mntns` (the node's), by their /proc entries. */
function pidsInMountNs(mntns: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/mnt`) === mntns) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/**
 * Kills whatever a previous run left (its node's processes: by the recorded
 * namespace, and by our cgroups) and removes its cgroups and state folder.
 * Synchronous, so that it also runs from an exit hook. Returns what it found.
 */
export function cleanLeftovers(): string[] {
  const found: string[] = [];
  const mntFile = path.join(STATE, "node.mntns");
  const initFile = path.join(STATE, "node.pid");
  if (existsSync(initFile)) {
    const pid = Number(readFileSync(initFile, "utf8").trim());
    if (pid > 0 && alive(pid)) {
      found.push(`node PID 1 (${pid}) still running`);
      kill(pid);
    }
  }
  if (existsSync(mntFile)) {
    const mntns = readFileSync(mntFile, "utf8").trim();
    for (const pid of pidsInMountNs(mntns)) {
      found.push(`process ${pid} in the node's mount namespace`);
      kill(pid);
    }
  }
  for (const controller of controllers()) {
    const dirs = ourCgroups(controller);
    for (let attempt = 0; attempt < 50 && dirs.some((d) => existsSync(d)); attempt++) {
      for (const dir of dirs) {
        for (const pid of pidsIn(dir)) {
          found.push(`process ${pid} in cgroup ${dir}`);
          kill(pid);
        }
        try {
          rmdirSync(dir);
        } catch {
          // busy until its processes are reaped: next attempt
        }
      }
      if (dirs.some((d) => existsSync(d))) spawnSync("sleep", ["0.1"]);
    }
    for (const dir of dirs) if (existsSync(dir)) found.push(`cgroup ${dir} could not be removed`);
  }
  if (existsSync(STATE)) {
    found.push(`state folder ${STATE}`);
    rmSync(STATE, { recursive: true, force: true });
  }
  return found;
}

export interface Node {
  readonly state: string;
  /** PID (in the host's namespace) of the node's PID 1. */
  readonly initPid: number;
  readonly logDir: string;
  /** Starts `command` inside the node (its network, mount and PID namespaces, and our cgroups). */
  spawn(name: string, command: string, args: readonly string[], env?: Readonly<Record<string, string>>): Proc;
  /** Runs a short command inside the node's network namespace only (host files, node's addresses). */
  runInNet(
    command: string,
    args: readonly string[],
    options?: { readonly input?: string; readonly timeoutMs?: number; readonly env?: Readonly<Record<string, string>> },
  ): Promise<RunResult>;
  /** Runs a short command inside all of the node's namespaces. */
  runInNode(command: string, args: readonly string[], options?: { readonly input?: string; readonly timeoutMs?: number }): Promise<RunResult>;
  /** Peak memory so far: the cgroup's max usage (RSS + page cache) and the largest RSS sampled. */
  memory(): { readonly maxUsageBytes: number; readonly maxRssBytes: number };
  /** Kills everything, removes the cgroups and the state folder; returns what could not be removed. */
  teardown(): Promise<string[]>;
}

let lockHolder: Proc | undefined;

/** Takes the machine's cluster lock (waits up to `timeoutMs` for another run to finish). */
export async function lock(logDir: string, timeoutMs = 30 * 60_000): Promise<void> {
  await mkdir(path.dirname(LOCK), { recursive: true });
  // flock (no fork: it becomes the `sleep`) holds the lock while it lives; it dies with this process (pdeathsig).
  lockHolder = spawnTracked(
    "lock",
    "flock",
    ["--exclusive", "--no-fork", "--wait", String(timeoutMs / 1000), LOCK, "sh", "-c", "echo locked; exec sleep 86400"],
    {
      logDir,
      env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" },
    },
  );
  await waitFor(
    `the cluster lock ${LOCK}`,
    () => {
      if (!lockHolder?.running()) throw new Error(`flock exited: ${lockHolder?.tail()}`);
      return lockHolder.stdout().includes("locked");
    },
    { timeoutMs: timeoutMs + 5_000, intervalMs: 200 },
  );
}

export async function unlock(): Promise<void> {
  await lockHolder?.stop(1_000);
  lockHolder = undefined;
}

export async function startNode(options: { readonly pauseBin: string; readonly logDir: string }): Promise<Node> {
  await mkdir(STATE, { recursive: true, mode: 0o755 });
  // Our cgroup under every v1 controller: the kubelet's cgroupRoot, and where the
  // components themselves run (cgroup `node`), so the memory controller measures all.
  for (const controller of controllers()) {
    for (const dir of [path.join(CGROUP_ROOT, controller, CGROUP), path.join(CGROUP_ROOT, controller, CGROUP, "node")]) {
      await mkdir(dir, { recursive: true });
      if (controller === "cpuset") {
        // A v1 cpuset starts empty: no task may join until cpus and mems are set.
        const parent = path.dirname(dir);
        for (const file of ["cpuset.cpus", "cpuset.mems"]) await writeFile(path.join(dir, file), (await readFile(path.join(parent, file), "utf8")).trim());
      }
    }
  }
  const joinCgroups = controllers()
    .map((c) => `echo $$ > ${path.join(CGROUP_ROOT, c, CGROUP, "node", "cgroup.procs")}`)
    .join("; ");

  const init = spawnTracked(
    "node-init",
    "sh",
    [
      "-c",
      `${joinCgroups}; exec unshare --pid --fork --kill-child --mount-proc --net --mount --propagation private -- bash "$0" "$1" "$2"`,
      path.join(repoRoot, "test", "cluster", "node-init.sh"),
      STATE,
      options.pauseBin,
    ],
    { logDir: options.logDir, env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin" } },
  );
  await waitFor(
    "the node's namespaces (test/cluster/node-init.sh)",
    () => {
      if (!init.running()) throw new Error(`node-init exited: ${init.tail()}`);
      return existsSync(path.join(STATE, "node.ready"));
    },
    { timeoutMs: 20_000, detail: () => init.tail() },
  );
  // unshare's forked child is the namespace's PID 1.
  const children = readFileSync(`/proc/${init.pid}/task/${init.pid}/children`, "utf8").trim().split(/\s+/).map(Number);
  const initPid = children[0];
  if (initPid === undefined || !(initPid > 0)) throw new Error(`no PID 1 under unshare (${init.pid})`);
  const mntns = readlinkSync(`/proc/${initPid}/ns/mnt`);
  writeFileSync(path.join(STATE, "node.pid"), `${initPid}\n`);
  writeFileSync(path.join(STATE, "node.mntns"), `${mntns}\n`);

  const nsenterNet = ["--target", String(initPid), "--net"];
  const nsenterAll = ["--target", String(initPid), "--net", "--mount", "--pid"];
  const procs: Proc[] = [init];
  const pathEnv = process.env["PATH"] ?? "/usr/bin:/bin";

  // Peak memory: the cgroup's own high-water mark, and total_rss sampled every 2 s.
  const memDir = path.join(CGROUP_ROOT, "memory", CGROUP);
  let maxRss = 0;
  const sample = (): void => {
    try {
      const stat = readFileSync(path.join(memDir, "memory.stat"), "utf8");
      const rss = Number(/^total_rss (\d+)$/m.exec(stat)?.[1] ?? 0);
      maxRss = Math.max(maxRss, rss);
    } catch {
      // not there yet or gone
    }
  };
  const sampler = setInterval(sample, 2_000);
  sampler.unref();

  let tornDown = false;
  return {
    state: STATE,
    initPid,
    logDir: options.logDir,
    spawn(name, command, args, env = {}) {
      const proc = spawnTracked(name, "sh", ["-c", `${joinCgroups}; exec nsenter ${nsenterAll.join(" ")} -- "$@"`, "sh", command, ...args], {
        logDir: options.logDir,
        env: { PATH: pathEnv, HOME: process.env["HOME"] ?? "/root", ...env },
      });
      procs.push(proc);
      return proc;
    },
    runInNet(command, args, opts = {}) {
      return run("nsenter", [...nsenterNet, "--", command, ...args], {
        ...opts,
        env: { PATH: pathEnv, HOME: process.env["HOME"] ?? "/root", ...(opts.env ?? {}) },
      });
    },
    runInNode(command, args, opts = {}) {
      return run("nsenter", [...nsenterAll, "--", command, ...args], { ...opts, env: { PATH: pathEnv, HOME: process.env["HOME"] ?? "/root" } });
    },
    memory() {
      sample();
      let maxUsage = 0;
      try {
        maxUsage = Number(readFileSync(path.join(memDir, "memory.max_usage_in_bytes"), "utf8").trim());
      } catch {
        // gone
      }
      return { maxUsageBytes: maxUsage, maxRssBytes: maxRss };
    },
    async teardown() {
      if (tornDown) return [];
      tornDown = true;
      clearInterval(sampler);
      // PID 1 of the namespace: the kernel kills every process in it.
      kill(initPid);
      kill(init.pid);
      await waitFor("the node's processes to exit", () => procs.every((p) => !p.running()) && !alive(initPid), { timeoutMs: 30_000, intervalMs: 100 }).catch(
        () => undefined,
      );
      for (let i = 0; i < 50 && pidsInMountNs(mntns).length > 0; i++) await sleep(100);
      const left = cleanLeftovers().filter((f) => !f.startsWith("state folder"));
      return left;
    },
  };
}

/** For an exit hook: no awaiting, whatever state the run is in. */
export function emergencyTeardown(): void {
  try {
    cleanLeftovers();
  } catch {
    // best effort; the next run cleans what is left
  }
}
