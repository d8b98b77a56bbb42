/**
 * Summarizes a V8 .cpuprofile (as written by `node --cpu-prof`, e.g. with BENCH_CPU_PROF=1 npm run bench):
 *
 *   npx tsx bench/profile.ts .tmp/bench-prof/waymark [requests] [top]
 *   npx tsx bench/profile.ts --diff .tmp/bench-prof/waymark REQUESTS .tmp/bench-prof/bare REQUESTS [top]
 *
 * Given a folder, it reads the largest .cpuprofile in it (the main thread; tsx's loader thread writes
 * another). `requests` (how many requests the process served, from .tmp/bench-latest.json) adds µs per
 * request. Prints: time by area (Waymark's src/, hono, @hono/node-server, undici inside Node, Node
 * internals, GC), the top functions by self time, Waymark's functions by inclusive time, and for each
 * Waymark function what it spends its time calling.
 *
 * tsx strips whitespace from what it runs, so V8 reports every src/ position on line 1; the function's
 * TypeScript line is recovered from the source map tsx keeps in its cache (os.tmpdir()/tsx-<uid>/).
 * Time after an `await` runs without the awaiting function on the stack (undici reading the upstream's
 * answer, node-server writing the response), so compare areas with the bare proxy's profile too.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ROOT_DIR } from './procs.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export function area(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle';
  if (name === '(program)' || name === '(root)') return 'V8/native (program)';
  if (url.includes('/node_modules/hono/')) return 'hono';
  if (url.includes('/node_modules/@hono/node-server/')) return '@hono/node-server';
  // In wrangler's bundle map drizzle-orm's files appear as node_modules/src/... (its own maps say ../src/).
  if (
    url.includes('/node_modules/drizzle-orm/') ||
    url.includes('/node_modules/src/') ||
    url.includes('/node_modules/@libsql/') ||
    url.includes('libsql')
  )
    return 'drizzle/libsql';
  if (url.includes('/node_modules/zod/')) return 'zod';
  if (url.includes('/node_modules/undici/')) return 'undici (npm)';
  if (url.includes('/node_modules/tsx/') || url.includes('internal/modules/')) return 'module loading (tsx, startup)';
  if (url.includes('/node_modules/')) return 'other node_modules';
  if (url.includes('/src/')) return 'waymark src/';
  if (url.includes('/bench/') || url.includes('/scripts/')) return 'bench harness';
  if (url.includes('deps/undici')) return 'undici (fetch, in Node)';
  if (url.startsWith('node:') || url === '') return 'node internals / native';
  return 'other';
}

// --- source maps from tsx's cache --------------------------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Per generated line: [generatedColumn, sourceIndex, sourceLine] segments, in column order. */
export function decodeMappings(mappings: string): [number, number, number][][] {
  const lines: [number, number, number][][] = [];
  let source = 0;
  let srcLine = 0;
  for (const line of mappings.split(';')) {
    const segments: [number, number, number][] = [];
    let genCol = 0;
    for (const segment of line.split(',')) {
      if (!segment) continue;
      const values: number[] = [];
      let value = 0;
      let shift = 0;
      for (const ch of segment) {
        const digit = B64.indexOf(ch);
        value += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          values.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      genCol += values[0] ?? 0;
      if (values.length >= 4) {
        source += values[1] ?? 0;
        srcLine += values[2] ?? 0;
        segments.push([genCol, source, srcLine]);
      }
    }
    lines.push(segments);
  }
  return lines;
}

interface Transformed {
  code: string;
  lines: [number, number, number][][];
  mtime: number;
}

function tsxCache(): Map<string, Transformed[]> {
  const byPath = new Map<string, Transformed[]>();
  const dir = join(tmpdir(), `tsx-${process.getuid?.() ?? 0}`);
  let files: string[] = [];
  try {
    files = readdirSync(dir);
  } catch {
    return byPath;
  }
  for (const file of files) {
    try {
      const path = join(dir, file);
      const entry = JSON.parse(readFileSync(path, 'utf8')) as {
        code?: string;
        map?: { sources?: string[]; mappings?: string };
      };
      const source = entry.map?.sources?.[0];
      if (!entry.code || !source || !entry.map?.mappings) continue;
      const list = byPath.get(source) ?? [];
      list.push({ code: entry.code, lines: decodeMappings(entry.map.mappings), mtime: statSync(path).mtimeMs });
      byPath.set(source, list);
    } catch {
      // not a transform entry
    }
  }
  for (const list of byPath.values()) list.sort((a, b) => b.mtime - a.mtime);
  return byPath;
}

/** The 1-based TypeScript line of a function V8 reports at (line, column) of tsx's output; null if unknown. */
function mapLine(cache: Map<string, Transformed[]>, frame: CallFrame): number | null {
  let path: string;
  try {
    path = fileURLToPath(frame.url);
  } catch {
    return null;
  }
  const candidates = cache.get(path);
  if (!candidates) return null;
  // Several versions of a file may be cached: take the newest whose text has this function at this column.
  const fits = (t: Transformed) => {
    if (!frame.functionName) return true;
    const lineText = t.code.split('\n')[frame.lineNumber] ?? '';
    return lineText
      .slice(Math.max(0, frame.columnNumber - 40), frame.columnNumber + 40)
      .includes(frame.functionName.replace(/^#/, ''));
  };
  const t = candidates.find(fits) ?? candidates[0];
  const segments = t?.lines[frame.lineNumber];
  if (!segments || segments.length === 0) return null;
  let best: [number, number, number] | undefined;
  for (const s of segments) {
    if (s[0] <= frame.columnNumber) best = s;
    else break;
  }
  return (best ?? segments[0] ?? [0, 0, 0])[2] + 1;
}

/** The profile's nodes by id, each node's parent, and a readable label per node ("name  file:line"). */
function frameIndex(profile: CpuProfile, cache: Map<string, Transformed[]>) {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const labels = new Map<number, string>();
  const label = (id: number): string => {
    let text = labels.get(id);
    if (text) return text;
    const f = (byId.get(id) as ProfileNode).callFrame;
    let where = f.url;
    let line = f.lineNumber + 1;
    if (where.startsWith('file://')) {
      const mapped = where.includes('/node_modules/') ? null : mapLine(cache, f);
      if (mapped !== null) line = mapped;
      try {
        where = relative(ROOT_DIR, fileURLToPath(where));
      } catch {
        // keep the URL
      }
    }
    const name = f.functionName || '(anonymous)';
    text = where ? `${name}  ${where}:${line}` : name;
    labels.set(id, text);
    return text;
  };
  return { byId, parent, label };
}

// --- summary -----------------------------------------------------------------------------------------

/**
 * `sourcePositions`: the frames already point at source lines (a workerd profile mapped through the
 * bundle's source map), so tsx's cache is not consulted.
 */
export function summarize(
  profile: CpuProfile,
  options: { requests?: number; top?: number; sourcePositions?: boolean } = {},
): string {
  const top = options.top ?? 25;
  const { byId, parent, label } = frameIndex(profile, options.sourcePositions ? new Map() : tsxCache());
  const srcPrefix = `${pathToFileURL(join(ROOT_DIR, 'src')).href}/`;
  const isSrc = (id: number) => (byId.get(id) as ProfileNode).callFrame.url.startsWith(srcPrefix);

  const selfUs = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    total += dt;
  }
  const areas = new Map<string, number>();
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  /** "waymark function -> first callee outside src/" (or "(self)"), by the innermost src/ frame of each sample. */
  const calls = new Map<string, Map<string, number>>();
  for (const [id, us] of selfUs) {
    const f = (byId.get(id) as ProfileNode).callFrame;
    const a = area(f.url, f.functionName);
    areas.set(a, (areas.get(a) ?? 0) + us);
    if (a === 'idle') continue;
    const key = label(id);
    self.set(key, (self.get(key) ?? 0) + us);
    const seen = new Set<string>();
    let below: number | null = null;
    let innermost: { fn: number; callee: number | null } | null = null;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      if (!innermost && isSrc(cur)) innermost = { fn: cur, callee: below };
      below = cur;
      if (!isSrc(cur)) continue;
      const k = label(cur);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
    if (innermost) {
      const fn = label(innermost.fn);
      const callee = innermost.callee === null ? '(own code)' : label(innermost.callee);
      const m = calls.get(fn) ?? new Map<string, number>();
      m.set(callee, (m.get(callee) ?? 0) + us);
      calls.set(fn, m);
    }
  }
  const busy = total - (areas.get('idle') ?? 0);
  const req = options.requests;
  const fmt = (us: number) =>
    `${((100 * us) / busy).toFixed(1).padStart(5)}%${req ? `  ${(us / req).toFixed(1).padStart(7)} µs/req` : ''}`;
  const out: string[] = [];
  out.push(
    `profile: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy${req ? `, ${req} requests: ${(busy / req).toFixed(0)} µs busy per request` : ''} (percentages are of busy time)`,
  );
  out.push('', 'by area (self time):');
  for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1])) if (a !== 'idle') out.push(`  ${fmt(us)}  ${a}`);
  out.push('', `top ${top} functions by self time:`);
  for (const [k, us] of [...self].sort((x, y) => y[1] - x[1]).slice(0, top)) out.push(`  ${fmt(us)}  ${k}`);
  out.push('', `Waymark (src/) functions by inclusive time (while on the stack):`);
  for (const [k, us] of [...inclusive].sort((x, y) => y[1] - x[1]).slice(0, top)) out.push(`  ${fmt(us)}  ${k}`);
  out.push('', 'what the innermost Waymark function on the stack was calling:');
  const rows = [...calls]
    .map(([fn, m]) => [fn, m, [...m.values()].reduce((s, v) => s + v, 0)] as const)
    .sort((x, y) => y[2] - x[2]);
  for (const [fn, m, sum] of rows.slice(0, 12)) {
    out.push(`  ${fmt(sum)}  ${fn}`);
    for (const [callee, us] of [...m].sort((x, y) => y[1] - x[1]).slice(0, 5))
      out.push(`      ${fmt(us)}  -> ${callee}`);
  }
  return out.join('\n');
}

/** Inclusive time per frame label (each label counted once per sample), in µs. */
function inclusiveByLabel(profile: CpuProfile, cache: Map<string, Transformed[]>): Map<string, number> {
  const { byId, parent, label } = frameIndex(profile, cache);
  const out = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    const name = (byId.get(id) as ProfileNode).callFrame.functionName;
    if (name === '(idle)' || name === '(root)') continue;
    const dt = profile.timeDeltas[i] ?? 0;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = label(cur);
      if (k === '(root)' || seen.has(k)) continue;
      seen.add(k);
      out.set(k, (out.get(k) ?? 0) + dt);
    }
  }
  return out;
}

/**
 * Where a process spends more per request than a baseline: inclusive µs/request per function in both,
 * largest differences first. Inclusive times nest (a caller includes its callees).
 */
export function diff(a: CpuProfile, aRequests: number, b: CpuProfile, bRequests: number, top = 30): string {
  const cache = tsxCache();
  const ia = inclusiveByLabel(a, cache);
  const ib = inclusiveByLabel(b, cache);
  const busy = (p: CpuProfile) => {
    let us = 0;
    const idle = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
    p.samples.forEach((id, i) => {
      if (!idle.has(id)) us += p.timeDeltas[i] ?? 0;
    });
    return us;
  };
  const rows = [...new Set([...ia.keys(), ...ib.keys()])].map((k) => {
    const x = (ia.get(k) ?? 0) / aRequests;
    const y = (ib.get(k) ?? 0) / bRequests;
    return { k, x, y, d: x - y };
  });
  rows.sort((p, q) => q.d - p.d);
  const out = [
    `busy per request: ${(busy(a) / aRequests).toFixed(0)} µs vs ${(busy(b) / bRequests).toFixed(0)} µs (profiled)`,
  ];
  out.push('   this   baseline   delta  µs/req inclusive');
  for (const r of rows.slice(0, top))
    out.push(
      `${r.x.toFixed(1).padStart(7)} ${r.y.toFixed(1).padStart(10)} ${r.d >= 0 ? '+' : ''}${r.d.toFixed(1).padStart(7)}  ${r.k}`,
    );
  return out.join('\n');
}

export function readProfile(arg: string): { file: string; profile: CpuProfile } {
  let file = arg;
  if (statSync(arg).isDirectory()) {
    const files = readdirSync(arg)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(arg, f))
      .sort((a, b) => statSync(b).size - statSync(a).size);
    if (!files[0]) throw new Error(`no .cpuprofile in ${arg}`);
    file = files[0];
  }
  return { file, profile: JSON.parse(readFileSync(file, 'utf8')) as CpuProfile };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--diff' && argv.length >= 5) {
    const [, a, ar, b, br, top] = argv as [string, string, string, string, string, string | undefined];
    console.log(diff(readProfile(a).profile, Number(ar), readProfile(b).profile, Number(br), Number(top ?? 30)));
    process.exit(0);
  }
  const [arg, requests, top] = argv;
  if (!arg) {
    console.error('usage: npx tsx bench/profile.ts FILE.cpuprofile|DIR [requests] [top]');
    console.error('       npx tsx bench/profile.ts --diff DIR_A REQUESTS_A DIR_B REQUESTS_B [top]');
    process.exit(1);
  }
  const { file, profile } = readProfile(arg);
  console.log(file);
  console.log(summarize(profile, { ...(requests ? { requests: Number(requests) } : {}), top: Number(top ?? 25) }));
}
