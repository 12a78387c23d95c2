// What /proc says about a process: resident set (VmRSS) and its peak (VmHWM), CPU time and
// bytes read. The peak can be reset (write 5 to /proc/<pid>/clear_refs, Linux >= 4.0, as the
// process's owner or root) so one benchmark's peak is not an earlier one's. A sampler also
// keeps the highest VmRSS it saw, for kernels where the reset is refused.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** Open file descriptors of the process; NaN once it is gone. */
export function openFds(pid: number): number {
  try { return readdirSync(`/proc/${pid}/fd`).length; } catch { return Number.NaN; }
}

export interface MemoryStatus {
  rssMb: number; hwmMb: number;
  /** RSS split as the kernel counts it: anonymous memory (heaps), file pages (the node binary's code, mapped files), shared memory. */
  anonMb: number; fileMb: number; shmemMb: number;
}

export function readMemory(pid: number): MemoryStatus | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024, anonMb: kb('RssAnon') / 1024, fileMb: kb('RssFile') / 1024, shmemMb: kb('RssShmem') / 1024 };
}

/** Resets VmHWM to the current VmRSS; false when the kernel refused. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Bytes the process read and wrote through read/write syscalls (files, sockets, pipes). */
export function readIo(pid: number): { rchar: number; wchar: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/io`, 'utf8');
    const value = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    return { rchar: value('rchar'), wchar: value('wchar') };
  } catch {
    return undefined;
  }
}

/** Samples VmRSS every `intervalMs` between start() and stop(); the peak is max(samples, VmHWM). */
export class MemorySampler {
  readonly pid: number;
  readonly intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #peakRss = 0;
  #samples = 0;
  #resetWorked = false;

  constructor(pid: number, intervalMs = 100) {
    this.pid = pid;
    this.intervalMs = intervalMs;
  }

  start(): this {
    this.#resetWorked = resetPeak(this.pid);
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), this.intervalMs);
    this.#timer.unref();
    return this;
  }

  #sample(): void {
    const m = readMemory(this.pid);
    if (!m) return;
    this.#samples += 1;
    this.#peakRss = Math.max(this.#peakRss, m.rssMb);
  }

  /** Peak RSS in MB since start(): VmHWM when the reset worked, else the highest sample. */
  stop(): { peakMb: number; sampledPeakMb: number; samples: number; fromHwm: boolean } {
    if (this.#timer) clearInterval(this.#timer);
    this.#sample();
    const m = readMemory(this.pid);
    const hwm = this.#resetWorked && m ? m.hwmMb : 0;
    return { peakMb: Math.max(this.#peakRss, hwm), sampledPeakMb: this.#peakRss, samples: this.#samples, fromHwm: this.#resetWorked };
  }
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU time (user + system) the process used so far, in ms; its children are not counted. */
export function readCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is state (field 3); utime is field 14, stime field 15.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU time (user + system, ms) of the process's threads so far, summed by thread name: the
 * main thread ('node'), libuv's pool ('libuv-worker': file reads and writes, hashing), V8's
 * helpers ('V8 DefaultWorke': concurrent garbage collection and compilation).
 */
export function readThreadCpuMs(pid: number): Record<string, number> {
  const byName: Record<string, number> = {};
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byName[name] = (byName[name] ?? 0) + ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    } catch { /* the thread ended */ }
  }
  return byName;
}

/** Per-name CPU used between two readThreadCpuMs() readings. */
export function threadCpuSince(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const used: Record<string, number> = {};
  for (const [name, ms] of Object.entries(after)) used[name] = ms - (before[name] ?? 0);
  return used;
}
