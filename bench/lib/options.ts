// Knobs of a benchmark run, all from the environment so `make bench` needs no arguments:
//   BENCH_QUICK=1            small sizes and counts: checks the harness in a minute or two
//   BENCH_ONLY=a,b           run only these benchmarks (overhead, throughput, log, artifact, image, save, footprint, crypto, soak, soak-faults, proxies, pull, embedded-load)
//   BENCH_REPEATS=N          repeated runs per figure (median taken); default 3, quick 1
//   BENCH_OVERHEAD_TASKS=N   sequential tasks for per-task overhead (default 30, quick 6)
//   BENCH_THROUGHPUT_TASKS=N tasks per throughput batch and capacity (default 80, quick 12)
//   BENCH_CAPACITIES=a,b     capacities of the throughput benchmark, each against raw at the same
//                            parallelism (default 4,8,16; quick 4,16; BENCH_CAPACITY=N: just N)
//   BENCH_SOAK_TASKS=N       mixed tasks of the soak benchmark (default 2000, quick 200)
//   BENCH_SOAK_FAULT_TASKS=N mixed tasks of the soak with faults (default 500, quick 100)
//   BENCH_LOG_MB=N           task output of the log path benchmark (default 1024, quick 64)
//   BENCH_LOG_LINES=1        the log task writes 80-column lines instead of one long run of bytes
//   BENCH_ARTIFACT_MB=N      artifact size (default 1024, quick 64)
//   BENCH_ARTIFACT_PARTS=single,parallel  parts of the artifact benchmark: one big file, and many
//                            artifacts at several parallelisms (default both)
//   BENCH_ARTIFACT_PARALLELISMS=1,8  upload parallelisms of the many-artifacts part (default 1,4,8,16;
//                            quick 1 and the default)
//   BENCH_IMAGE_MB=N         task-image size (default 200, quick 20)
//   BENCH_PULL_MB=N          image the registry pull benchmark pulls (default 100, quick 20)
//   BENCH_REGISTRY=host:port registry it pulls from (default 127.0.0.1:5480, the open one of `make registry`)
//   BENCH_SAVE_MB=N          data the dockerSave task leaves in its container (default 256, quick 32)
//   BENCH_TASK_IMAGE=name    image of the trivial tasks (default taskenv_pass:latest)
//   BENCH_DEPLOYMENT=embedded the embedded deployment runs inside the worker process (`worker
//                            start` with no rootUrl, as `make start` does). Default: separate, in
//                            its own process (`worker serve`), as a real deployment is: the worker's
//                            RSS and CPU are its own. Footprint measures both.
//   BENCH_CPU_PROF=dir       run worker processes with --cpu-prof, profiles under dir/<benchmark>/
//   BENCH_KEEP=1             keep the worker state directories (for inspection)
//   BENCH_RESULTS=dir        where latest.md and latest.json go (default bench/results)
import path from 'node:path';

export const BENCHMARKS = ['footprint', 'overhead', 'throughput', 'log', 'artifact', 'image', 'save', 'crypto', 'soak', 'soak-faults', 'proxies', 'pull', 'embedded-load'] as const;
export type BenchmarkName = typeof BENCHMARKS[number];

export interface BenchOptions {
  quick: boolean;
  only: BenchmarkName[];
  repeats: number;
  overheadTasks: number;
  throughputTasks: number;
  capacities: number[];
  soakTasks: number;
  soakFaultTasks: number;
  logBytes: number;
  logLines: boolean;
  artifactBytes: number;
  artifactParts: Array<'single' | 'parallel'>;
  /** Unset: the benchmark's own choice. */
  artifactParallelisms?: number[];
  imageBytes: number;
  saveBytes: number;
  pullBytes: number;
  registry: string;
  image: string;
  deployment: 'embedded' | 'separate';
  cpuProfDir: string | undefined;
  keep: boolean;
  resultsDir: string;
}

const MIB = 1024 * 1024;

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  return value;
}

function capacityList(env: NodeJS.ProcessEnv, quick: boolean): number[] {
  if (env.BENCH_CAPACITIES) {
    const list = env.BENCH_CAPACITIES.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
    if (!list.length || list.some((c) => !Number.isInteger(c) || c <= 0)) throw new Error(`BENCH_CAPACITIES must be positive integers separated by commas, not ${JSON.stringify(env.BENCH_CAPACITIES)}`);
    return list;
  }
  if (env.BENCH_CAPACITY) return [int(env, 'BENCH_CAPACITY', 4)];
  return quick ? [4, 16] : [4, 8, 16];
}

function deploymentMode(raw: string | undefined): 'embedded' | 'separate' {
  if (raw === undefined || raw === '' || raw === 'separate') return 'separate';
  if (raw === 'embedded') return 'embedded';
  throw new Error(`BENCH_DEPLOYMENT must be separate or embedded, not ${JSON.stringify(raw)}`);
}

function artifactParts(raw: string | undefined): Array<'single' | 'parallel'> {
  const parts = (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) return ['single', 'parallel'];
  for (const part of parts) if (part !== 'single' && part !== 'parallel') throw new Error(`BENCH_ARTIFACT_PARTS: unknown part ${JSON.stringify(part)}; known: single, parallel`);
  return parts as Array<'single' | 'parallel'>;
}

function positiveList(name: string, raw: string): number[] {
  const values = raw.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (values.length === 0 || values.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`${name} must be a comma-separated list of positive integers, not ${JSON.stringify(raw)}`);
  return values;
}

export function benchOptions(env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
  const only = (env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of only) {
    if (!(BENCHMARKS as readonly string[]).includes(name)) throw new Error(`BENCH_ONLY: unknown benchmark ${JSON.stringify(name)}; known: ${BENCHMARKS.join(', ')}`);
  }
  const benchDir = path.dirname(path.dirname(new URL(import.meta.url).pathname));
  return {
    quick,
    only: only.length ? only as BenchmarkName[] : [...BENCHMARKS],
    repeats: int(env, 'BENCH_REPEATS', quick ? 1 : 3),
    overheadTasks: int(env, 'BENCH_OVERHEAD_TASKS', quick ? 6 : 30),
    throughputTasks: int(env, 'BENCH_THROUGHPUT_TASKS', quick ? 12 : 80),
    capacities: capacityList(env, quick),
    soakTasks: Math.max(200, int(env, 'BENCH_SOAK_TASKS', quick ? 200 : 2000)),
    soakFaultTasks: int(env, 'BENCH_SOAK_FAULT_TASKS', quick ? 100 : 500),
    logBytes: int(env, 'BENCH_LOG_MB', quick ? 64 : 1024) * MIB,
    logLines: env.BENCH_LOG_LINES === '1',
    artifactBytes: int(env, 'BENCH_ARTIFACT_MB', quick ? 64 : 1024) * MIB,
    artifactParts: artifactParts(env.BENCH_ARTIFACT_PARTS),
    ...(env.BENCH_ARTIFACT_PARALLELISMS ? { artifactParallelisms: positiveList('BENCH_ARTIFACT_PARALLELISMS', env.BENCH_ARTIFACT_PARALLELISMS) } : {}),
    imageBytes: int(env, 'BENCH_IMAGE_MB', quick ? 20 : 200) * MIB,
    saveBytes: int(env, 'BENCH_SAVE_MB', quick ? 32 : 256) * MIB,
    pullBytes: int(env, 'BENCH_PULL_MB', quick ? 20 : 100) * MIB,
    registry: env.BENCH_REGISTRY || '127.0.0.1:5480',
    image: env.BENCH_TASK_IMAGE || 'taskenv_pass:latest',
    deployment: deploymentMode(env.BENCH_DEPLOYMENT),
    cpuProfDir: env.BENCH_CPU_PROF ? path.resolve(env.BENCH_CPU_PROF) : undefined,
    keep: env.BENCH_KEEP === '1',
    resultsDir: path.resolve(env.BENCH_RESULTS || path.join(benchDir, 'results')),
  };
}
