import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time of processes the benchmark did not fork itself through Node (nginx's workers, the workerd
 * Miniflare spawns), read from /proc. Linux only; elsewhere every figure is NaN and every list empty.
 */
export const TICKS_PER_SECOND = 100;

export interface ProcEntry {
  ppid: number;
  /** utime + stime, in clock ticks. */
  ticks: number;
  comm: string;
}

/** pid -> parent, CPU ticks and command name, for every process. */
export function processTable(): Map<number, ProcEntry> {
  const procs = new Map<number, ProcEntry>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return procs;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const open = stat.indexOf('(');
      const close = stat.lastIndexOf(')');
      const rest = stat.slice(close + 2).split(' ');
      procs.set(pid, {
        ppid: Number(rest[1]),
        ticks: Number(rest[11]) + Number(rest[12]),
        comm: stat.slice(open + 1, close),
      });
    } catch {
      // ended meanwhile
    }
  }
  return procs;
}

export function descendants(procs: Map<number, ProcEntry>, root: number): Set<number> {
  const mine = new Set<number>();
  const open = [root];
  while (open.length) {
    const parent = open.pop() as number;
    for (const [pid, { ppid }] of procs) {
      if (ppid === parent && !mine.has(pid)) {
        mine.add(pid);
        open.push(pid);
      }
    }
  }
  return mine;
}

/** User + system CPU of `pid` and its descendants, in µs (10 ms resolution); NaN when unreadable. */
export function treeCpuUs(pid: number): number {
  const procs = processTable();
  const self = procs.get(pid);
  if (!self) return Number.NaN;
  let ticks = self.ticks;
  for (const child of descendants(procs, pid)) ticks += procs.get(child)?.ticks ?? 0;
  return (ticks * 1e6) / TICKS_PER_SECOND;
}

/** Descendants of this process whose command name is `comm` (e.g. the workerd processes Miniflare started). */
export function descendantsNamed(comm: string): number[] {
  const procs = processTable();
  return [...descendants(procs, process.pid)].filter((pid) => procs.get(pid)?.comm === comm);
}

/** The children of `pid` (e.g. nginx's worker processes). */
export function childrenOf(pid: number): number[] {
  return [...processTable()].filter(([, p]) => p.ppid === pid).map(([child]) => child);
}

/** SIGKILL to each pid that still runs `comm` (by pid only, never by name; the check guards against a reused pid). */
export function killPids(pids: Iterable<number>, comm: string): void {
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== comm) continue;
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
