// What every benchmark gets: the options, a dockerode client for the floors, the engine's
// event stream, and a progress printer (stderr, so the table on stdout stays clean).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type Dockerode from 'dockerode';
import type { BenchOptions } from './options.ts';
import type { ContainerEvents } from './docker-events.ts';

export interface BenchContext {
  options: BenchOptions;
  engine: Dockerode;
  events: ContainerEvents;
  /** pid of dockerd, to count the engine's CPU time next to the worker's. */
  dockerdPid: number | undefined;
  progress(message: string): void;
  /** --cpu-prof directory for this benchmark's worker process, when profiling. */
  profileDir(benchmark: string): string | undefined;
}

export function makeContext(options: BenchOptions, engine: Dockerode, events: ContainerEvents): BenchContext {
  let dockerdPid: number | undefined;
  try {
    dockerdPid = Number(execFileSync('pidof', ['-s', 'dockerd'], { encoding: 'utf8' }).trim()) || undefined;
  } catch { /* not visible from here */ }
  const started = Date.now();
  return {
    options, engine, events, dockerdPid,
    progress: (message) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`),
    profileDir: (benchmark) => options.cpuProfDir ? path.join(options.cpuProfDir, benchmark) : undefined,
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
