import { readFileSync } from 'node:fs';
import { descendants, processTable, TICKS_PER_SECOND } from './proc-stat.js';

/**
 * How much CPU other processes on the machine used while we measured (other engineers' tests, builds...):
 * the benchmark shares 2 cores, so a busy neighbour skews absolute figures. Linux only (/proc); elsewhere
 * it reports null.
 *
 * other = the machine's busy time (/proc/stat) - this process's CPU time - its descendants' CPU time
 * (servers, wrk: sampled from /proc/<pid>/stat every `intervalMs` while the event loop is free).
 */
function machineBusyTicks(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  } catch {
    return null;
  }
}

export interface NoiseMonitor {
  /** Cores used on average by processes outside this benchmark since start; null where /proc is missing. */
  stop(): number | null;
}

export function startNoiseMonitor(intervalMs = 250): NoiseMonitor {
  const busy0 = machineBusyTicks();
  if (busy0 === null) return { stop: () => null };
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let last = processTable();
  let childTicks = 0;
  const step = () => {
    const next = processTable();
    const mine = new Set([...descendants(last, process.pid), ...descendants(next, process.pid)]);
    for (const pid of mine) {
      const before = last.get(pid);
      const after = next.get(pid);
      if (after) childTicks += Math.max(0, after.ticks - (before?.ticks ?? 0));
    }
    last = next;
  };
  const timer = setInterval(step, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      step();
      const seconds = (performance.now() - t0) / 1e3;
      const busy = ((machineBusyTicks() ?? busy0) - busy0) / TICKS_PER_SECOND;
      const cpu = process.cpuUsage(cpu0);
      const self = (cpu.user + cpu.system) / 1e6;
      return seconds > 0 ? Math.max(0, busy - self - childTicks / TICKS_PER_SECOND) / seconds : 0;
    },
  };
}
