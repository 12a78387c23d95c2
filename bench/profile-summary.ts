// Summarises V8 CPU profiles (node --cpu-prof, e.g. from BENCH_CPU_PROF=dir): where the
// worker's main-thread CPU time went, by function (self time), by file, and by the nearest
// caller in project code (so time in node internals is charged to the lib/ function that
// asked for it). Threads (libuv pool, zlib, GC helpers) are not in these profiles.
//   node bench/profile-summary.ts <file.cpuprofile | dir> [top N]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

function files(target: string): string[] {
  if (statSync(target).isFile()) return [target];
  return readdirSync(target, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(target, f));
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const p = url.replace(/^file:\/\//, '');
  const nm = p.lastIndexOf('node_modules/');
  if (nm >= 0) return p.slice(nm + 'node_modules/'.length);
  const lib = p.search(/\/(lib|bench|test)\//);
  return lib >= 0 ? p.slice(lib + 1) : p;
}

function summarise(file: string, top: number): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // The nearest caller in project code (lib/, bench/) or else in a package: who asked for the work.
  const ownerCache = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const cached = ownerCache.get(id);
    if (cached) return cached;
    let packageFrame: string | undefined;
    let owner: string | undefined;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)!.callFrame;
      const where = shortUrl(frame.url);
      const label = `${frame.functionName || '(anonymous)'}  ${where}:${frame.lineNumber + 1}`;
      if (/^(lib|bench|test)\//.test(where)) { owner = label; break; }
      if (!packageFrame && frame.url.includes('node_modules/')) packageFrame = label;
    }
    const result = owner ?? packageFrame ?? '(node internals only)';
    ownerCache.set(id, result);
    return result;
  };
  const byOwner = new Map<string, number>();
  const self = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const total = (profile.endTime - profile.startTime) / 1000;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let idle = 0;
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const name = node.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') { idle += us; continue; }
    const where = shortUrl(node.callFrame.url);
    const key = `${name}  ${where}${node.callFrame.url ? `:${node.callFrame.lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    byFile.set(where, (byFile.get(where) ?? 0) + us);
    const owner = ownerOf(id);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + us);
  }
  const busy = [...byFunction.values()].reduce((a, b) => a + b, 0) / 1000;
  process.stdout.write(`\n${file}\n  wall ${total.toFixed(0)} ms, busy ${busy.toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms\n`);
  const print = (title: string, map: Map<string, number>) => {
    process.stdout.write(`  ${title}\n`);
    for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`    ${(us / 1000).toFixed(0).padStart(7)} ms ${((us / 1000 / busy) * 100).toFixed(1).padStart(5)} %  ${k}\n`);
    }
  };
  print('self time by function', byFunction);
  print('self time by file', byFile);
  print('time by nearest project (or package) caller', byOwner);
}

const [target, topArg] = process.argv.slice(2);
if (!target) {
  process.stderr.write('usage: node bench/profile-summary.ts <file.cpuprofile | dir> [top N]\n');
  process.exitCode = 2;
} else {
  for (const f of files(target)) summarise(f, Number(topArg ?? 25));
}
