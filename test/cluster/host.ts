// What the cluster could change on the host, captured before it starts and
// compared after teardown: the proof that teardown restored the host. Only
// what other users of the machine change by themselves is left out (podman's
// containers of other runs, counters, entropy and the like), each named below.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const execFileP = promisify(execFile);

/** Paths the kubelet, containerd, the CNI plugins and runc write when left to their defaults. */
export const WATCHED_PATHS = [
  "/var/lib/kubelet",
  "/var/lib/containerd",
  "/var/lib/cni",
  "/var/log/pods",
  "/var/log/containers",
  "/run/containerd",
  "/run/netns",
  "/run/nri",
  "/run/runc",
  "/etc/cni",
  "/etc/containerd",
  "/etc/kubernetes",
  "/opt/cni",
  "/opt/containerd",
  "/usr/libexec/kubernetes",
];

/** sysctls that move by themselves (entropy, counters, allocation state). */
const VOLATILE_SYSCTL = [
  /^kernel\.random\./,
  /^kernel\.ns_last_pid/,
  /^kernel\.pty\.nr/,
  /^fs\.(dentry-state|file-nr|inode-nr|inode-state|quota\.)/,
  /^net\.netfilter\.nf_conntrack_count/,
  /^kernel\.sched_domain\./,
  /^vm\.stat_refresh/,
  /^net\.ipv4\.tcp_fastopen_key/,
  /^kernel\.perf_event_max_sample_rate/,
  /^fs\.binfmt_misc\./,
];

/** Mount points and cgroups that other podman runs on this machine add and remove meanwhile. */
const OTHERS = [/\/var\/lib\/containers\//, /\/run\/containers\//, /libpod/, /buildah/, /\/run\/user\//, /\/netns\/netns-/];

async function out(cmd: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, [...args], { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
    return stdout;
  } catch (err) {
    return `[${cmd} ${args.join(" ")} failed: ${err instanceof Error ? err.message : String(err)}]`;
  }
}

async function cgroupDirs(): Promise<string[]> {
  const root = "/sys/fs/cgroup";
  const found: string[] = [];
  for (const controller of await readdir(root).catch(() => [] as string[])) {
    const dir = path.join(root, controller);
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) if (entry.isDirectory()) found.push(`${controller}/${entry.name}`);
  }
  return found.filter((d) => !OTHERS.some((re) => re.test(d))).sort();
}

/** Every path down to depth 3 under these: anything a component creates outside STATE shows up. */
const LISTED_ROOTS = ["/etc", "/usr", "/opt", "/var/lib", "/var/log", "/var/tmp", "/run", "/srv", "/mnt", "/home"];
/** What other users of the machine (podman, apt, other test runs) create and remove meanwhile. */
const OTHERS_PATHS = [
  /^\/var\/lib\/(containers|apt|dpkg)(\/|$)/,
  /^\/var\/log\/(apt|journal)(\/|$)/,
  /^\/var\/log\/(dpkg|alternatives)\.log$/,
  /^\/run\/(containers|libpod|user|lock)(\/|$)/,
  // podman's runc state: its containers (64 hex digits) and buildah's build steps (our cluster's runc keeps its own under /run/containerd, inside the node's mount namespace).
  /^\/run\/runc\/(buildah-|[0-9a-f]{64})/,
  /^\/var\/tmp\/(?!member-greeter-cluster)/,
  /^\/etc\/(containers|ld\.so\.cache)/,
];

async function listing(): Promise<string> {
  const out = await execFileP("find", [...LISTED_ROOTS, "-xdev", "-maxdepth", "3"], { maxBuffer: 256 * 1024 * 1024, timeout: 120_000 }).then(
    (r) => r.stdout,
    (err: { stdout?: string }) => err.stdout ?? "",
  );
  return out
    .split("\n")
    .filter((p) => p !== "" && !OTHERS_PATHS.some((re) => re.test(p)))
    .sort()
    .join("\n");
}

export type Snapshot = Record<string, string>;

export async function snapshot(): Promise<Snapshot> {
  const sysctl = (await out("sysctl", ["-a"]))
    .split("\n")
    .filter((line) => line !== "" && !VOLATILE_SYSCTL.some((re) => re.test(line)))
    .sort()
    .join("\n");
  const mounts = (await readFile("/proc/self/mountinfo", "utf8"))
    .split("\n")
    .map((line) => {
      const f = line.split(" ");
      const sep = f.indexOf("-");
      return f.length > 4 ? `${f[4]} ${f[sep + 1] ?? ""} ${f[sep + 2] ?? ""}` : "";
    })
    .filter((m) => m !== "" && !OTHERS.some((re) => re.test(m)))
    .sort()
    .join("\n");
  const noComments = (text: string): string =>
    text
      .split("\n")
      .filter((l) => !l.startsWith("#"))
      .join("\n");
  return {
    sysctl,
    "iptables-save": noComments(await out("iptables-save", [])),
    "ip6tables-save": noComments(await out("ip6tables-save", [])),
    "nft list ruleset": await out("nft", ["-s", "list", "ruleset"]),
    mounts,
    cgroups: (await cgroupDirs()).join("\n"),
    paths: WATCHED_PATHS.map((p) => `${p} ${existsSync(p) ? "exists" : "absent"}`).join("\n"),
    files: await listing(),
    links: (await out("ip", ["-o", "link", "show"]))
      .split("\n")
      .map((l) => l.split(":").slice(0, 2).join(":").trim())
      .filter((l) => l !== "" && !/veth|podman/.test(l))
      .join("\n"),
    addresses: (await out("ip", ["-o", "addr", "show"])).replace(/valid_lft.*$/gm, "").trim(),
    routes: await out("ip", ["route", "show", "table", "all"]),
    netns: await out("ip", ["netns", "list"]),
  };
}

/** What differs between two snapshots, as readable lines (empty when the host is as it was). */
export function differences(before: Snapshot, after: Snapshot): string[] {
  const diffs: string[] = [];
  for (const key of Object.keys(before)) {
    const a = new Set((before[key] ?? "").split("\n"));
    const b = new Set((after[key] ?? "").split("\n"));
    for (const line of a) if (!b.has(line)) diffs.push(`${key}: gone: ${line}`);
    for (const line of b) if (!a.has(line)) diffs.push(`${key}: new: ${line}`);
  }
  return diffs;
}
