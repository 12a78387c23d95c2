// A stand-in for Taskcluster's worker-runner: writes the config file worker-runner writes for
// docker-worker, starts `bin/worker start --host worker-runner production` with
// DOCKER_WORKER_CONFIG naming it, and talks the runner protocol over the child's real stdin and
// stdout pipes. The worker log (JSON lines on stderr) is kept for assertions.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable, Writable } from 'node:stream';

const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface RunnerMessage { type: string; [k: string]: unknown }
export interface WorkerLogLine { message: string; level: string; [k: string]: unknown }

export class FakeRunner {
  readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  readonly messages: RunnerMessage[] = [];
  readonly otherStdout: string[] = [];
  readonly logLines: WorkerLogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  private readonly waiters = new Set<() => void>();

  constructor(options: { configFile: string; config: Record<string, unknown>; env?: NodeJS.ProcessEnv; args?: string[] }) {
    writeFileSync(options.configFile, JSON.stringify(options.config, null, 2), { mode: 0o600 });
    this.child = spawn(path.join(repoRoot, 'bin/worker'), ['start', '--host', 'worker-runner', ...(options.args ?? []), 'production'], {
      cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'],
      // Nothing of the test's own Taskcluster environment leaks in: the config file is the source.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DOCKER_WORKER_CONFIG: options.configFile, ...options.env },
    });
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      if (line.startsWith('~{')) this.messages.push(JSON.parse(line.slice(1)) as RunnerMessage);
      else this.otherStdout.push(line);
      this.notify();
    });
    readline.createInterface({ input: this.child.stderr }).on('line', (line) => {
      this.stderr.push(line);
      try { this.logLines.push(JSON.parse(line) as WorkerLogLine); } catch { /* not a log line */ }
      this.notify();
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => { resolve({ code, signal, at: Date.now() }); this.notify(); }));
  }

  private notify(): void { for (const w of this.waiters) w(); }

  send(msg: RunnerMessage): void {
    this.child.stdin.write(`~${JSON.stringify(msg)}\n`);
  }

  /** Waits until `found()` returns something (checked on every line the worker writes). */
  async until<T>(what: string, found: () => T | undefined, timeoutMs = 60_000): Promise<T> {
    const first = found();
    if (first !== undefined) return first;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { this.waiters.delete(check); reject(new Error(`timed out waiting for ${what}; worker stderr:\n${this.stderr.slice(-30).join('\n')}`)); }, timeoutMs);
      const check = () => {
        const v = found();
        if (v !== undefined) { clearTimeout(timer); this.waiters.delete(check); resolve(v); }
      };
      this.waiters.add(check);
    });
  }

  message(type: string, timeoutMs?: number): Promise<RunnerMessage> {
    return this.until(`a ${type} message`, () => this.messages.find((m) => m.type === type), timeoutMs);
  }

  logEvent(message: string, where: (l: WorkerLogLine) => boolean = () => true, timeoutMs?: number): Promise<WorkerLogLine> {
    return this.until(`the worker log line "${message}"`, () => this.logLines.find((l) => l.message === message && where(l)), timeoutMs);
  }

  /** Kills the worker if it still runs (end of a test). */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
