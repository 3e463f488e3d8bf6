// How many TCP connections a process has open to a port, from /proc: its
// socket fds' inodes joined with /proc/net/tcp and tcp6 (state 01 is
// ESTABLISHED). Sampled during a run, the distinct local ports seen give a
// lower bound on the connections it opened (one that lived shorter than the
// sampling interval is missed).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

const ESTABLISHED = "01";

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match?.[1] !== undefined) inodes.add(match[1]);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/**
 * The local ports of the ESTABLISHED connections in one /proc/net/tcp(6) text
 * whose socket inode is in `inodes` and whose remote port is `remotePort`,
 * keyed by inode. The kernel serves that file a page at a time, so a read made
 * while sockets open and close can list one socket twice: keyed by its inode,
 * it still counts once.
 */
export function establishedTo(table: string, inodes: ReadonlySet<string>, remotePort: number, into = new Map<string, number>()): Map<string, number> {
  for (const line of table.split("\n").slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    const cols = line.trim().split(/\s+/);
    const [, local, remote, state] = cols;
    const inode = cols[9];
    if (state !== ESTABLISHED || inode === undefined || !inodes.has(inode) || local === undefined || remote === undefined) continue;
    if (Number.parseInt(remote.slice(remote.lastIndexOf(":") + 1), 16) !== remotePort) continue;
    into.set(inode, Number.parseInt(local.slice(local.lastIndexOf(":") + 1), 16));
  }
  return into;
}

/** Local ports of the process's ESTABLISHED connections to `remotePort`. */
export function connectionsTo(pid: number, remotePort: number): number[] {
  const inodes = socketInodes(pid);
  const found = new Map<string, number>();
  if (inodes.size === 0) return [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    establishedTo(text, inodes, remotePort, found);
  }
  return [...found.values()];
}

export interface ConnectionSampler {
  /** Distinct connections seen so far (by local port) and the most open at once. */
  stop(): { readonly distinct: number; readonly peak: number };
}

export function sampleConnections(pid: number, remotePort: number, intervalMs = 50): ConnectionSampler {
  const seen = new Set<number>();
  let peak = 0;
  const sample = (): void => {
    const ports = connectionsTo(pid, remotePort);
    peak = Math.max(peak, ports.length);
    for (const port of ports) seen.add(port);
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { distinct: seen.size, peak };
    },
  };
}
