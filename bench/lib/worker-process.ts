// The worker under test, as a user runs it: `bin/worker start` in its own process, with a
// fresh state directory and task queue. Its stderr (winston JSON lines) is parsed as it comes,
// so benchmarks wait for events ('claimed task', 'task resolved', ...) and read their
// timestamps. With deployment 'separate', the embedded deployment runs in a process of its own
// (`bin/worker serve`) and the worker reaches it as a remote rootUrl: the worker process then
// holds only the worker, as in production.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import taskcluster from 'taskcluster-client';

export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const WORKER_BIN = path.join(REPO_ROOT, 'bin', 'worker');

export interface WorkerEvent {
  message: string;
  level: string;
  timestamp: string;
  /** The event's own timestamp, ms since the epoch. */
  time: number;
  /** When this process read the line, ms since the epoch. */
  receivedAt: number;
  taskId?: string;
  [key: string]: unknown;
}

export interface RootCredentials { rootUrl: string; clientId: string; accessToken: string }

type Waiter = { match: (e: WorkerEvent) => boolean; resolve: (e: WorkerEvent) => void };

/** A `bin/worker` child process whose stderr JSON lines are kept as events. */
export class WorkerCommand {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Date.now() just before spawn(). */
  readonly spawnedAt: number;
  readonly events: WorkerEvent[] = [];
  readonly stdoutLines: string[] = [];
  readonly otherStderr: string[] = [];
  readonly exited: Promise<number | null>;
  #waiters: Waiter[] = [];
  #stdoutWaiters: Array<{ match: RegExp; resolve: (m: RegExpExecArray) => void }> = [];
  #exitCode: number | null | undefined;

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.spawnedAt = Date.now();
    this.child = spawn(WORKER_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`could not start ${WORKER_BIN}`);
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => { this.#exitCode = code; resolve(code); }));
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.#onStderr(line));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.stdoutLines.push(line);
      for (const w of [...this.#stdoutWaiters]) {
        const m = w.match.exec(line);
        if (m) { this.#stdoutWaiters.splice(this.#stdoutWaiters.indexOf(w), 1); w.resolve(m); }
      }
    });
  }

  #onStderr(line: string): void {
    const receivedAt = Date.now();
    let event: WorkerEvent;
    try {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (typeof parsed.message !== 'string') throw new Error('not an event');
      event = { ...parsed, message: parsed.message, level: String(parsed.level), timestamp: String(parsed.timestamp),
        time: Date.parse(String(parsed.timestamp)), receivedAt } as WorkerEvent;
    } catch {
      this.otherStderr.push(line);
      if (this.otherStderr.length > 200) this.otherStderr.shift();
      return;
    }
    this.events.push(event);
    for (const w of [...this.#waiters]) {
      if (w.match(event)) { this.#waiters.splice(this.#waiters.indexOf(w), 1); w.resolve(event); }
    }
  }

  /** The first event (already seen or still to come) that matches. */
  waitFor(match: (e: WorkerEvent) => boolean, timeoutMs: number, what = 'an event'): Promise<WorkerEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { match, resolve: (e) => { clearTimeout(timer); resolve(e); } };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`worker ${this.pid}: no ${what} after ${timeoutMs} ms${this.#describeExit()}\n${this.tail()}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
      void this.exited.then(() => {
        if (this.#waiters.includes(waiter)) {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          clearTimeout(timer);
          reject(new Error(`worker ${this.pid} exited before ${what}${this.#describeExit()}\n${this.tail()}`));
        }
      });
    });
  }

  waitForMessage(message: string, timeoutMs: number, taskId?: string): Promise<WorkerEvent> {
    return this.waitFor((e) => e.message === message && (taskId === undefined || e.taskId === taskId), timeoutMs,
      `'${message}'${taskId ? ` for ${taskId}` : ''}`);
  }

  waitForStdout(match: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    for (const line of this.stdoutLines) { const m = match.exec(line); if (m) return Promise.resolve(m); }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${this.pid}: no output matching ${match} after ${timeoutMs} ms\n${this.tail()}`)), timeoutMs);
      this.#stdoutWaiters.push({ match, resolve: (m) => { clearTimeout(timer); resolve(m); } });
      void this.exited.then(() => { clearTimeout(timer); reject(new Error(`worker ${this.pid} exited before printing ${match}${this.#describeExit()}\n${this.tail()}`)); });
    });
  }

  #describeExit(): string {
    return this.#exitCode === undefined ? '' : ` (exit code ${this.#exitCode})`;
  }

  /** The last lines of the process's stderr, for error messages. */
  tail(lines = 15): string {
    const text = [...this.events.slice(-lines).map((e) => JSON.stringify(e)), ...this.otherStderr.slice(-lines)];
    return text.join('\n');
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 30_000): Promise<number | null> {
    if (this.#exitCode !== undefined) return this.#exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

export interface WorkerStartOptions {
  /** Names the worker type, worker id and profile directory. */
  name: string;
  capacity: number;
  /** 'embedded' (default): `worker start` hosts the deployment; 'separate': `worker serve` does. */
  deployment?: 'embedded' | 'separate';
  /** Reuse a state directory (e.g. one where tasks were queued before the worker started). */
  stateDir?: string;
  /** Worker type to claim from (default: derived from name). */
  workerType?: string;
  /** Directory for --cpu-prof output, if profiling. */
  cpuProfDir?: string;
  logLevel?: string;
  /** Extra environment for the worker process (config keys such as WORKER_...). */
  env?: Record<string, string>;
  keepStateDir?: boolean;
  /** Don't wait for 'worker started'. */
  noWait?: boolean;
  /** Further arguments of `worker start` (e.g. --config FILE). */
  args?: string[];
  /** With deployment 'separate': further arguments of `worker serve` (e.g. --claim-timeout 10). */
  serveArgs?: string[];
  /** With deployment 'separate': the root URL the worker is given instead of the deployment's own (a proxy in front of it). */
  rootUrlVia?: (rootUrl: string) => Promise<string>;
}

function baseEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('TASKCLUSTER_') || key.startsWith('WORKER_') || key === 'NODE_OPTIONS') delete env[key];
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export function profileEnv(cpuProfDir: string | undefined): Record<string, string> {
  if (!cpuProfDir) return {};
  mkdirSync(cpuProfDir, { recursive: true });
  return { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${cpuProfDir}` };
}

/** The embedded deployment alone (`bin/worker serve`), for tasks queued before a worker runs. */
export async function startDeployment(stateDir: string, cpuProfDir?: string, args: string[] = []): Promise<{ command: WorkerCommand; credentials: RootCredentials }> {
  const embeddedDir = path.join(stateDir, 'embedded');
  mkdirSync(embeddedDir, { recursive: true });
  const command = new WorkerCommand(['serve', '--port', '0', '--state', embeddedDir, ...args], baseEnv({ ...profileEnv(cpuProfDir) }));
  await command.waitForStdout(/^http:\/\//, 60_000);
  const credentials = JSON.parse(readFileSync(path.join(embeddedDir, 'credentials.json'), 'utf8')) as RootCredentials;
  return { command, credentials };
}

export class WorkerProcess {
  readonly command: WorkerCommand;
  readonly stateDir: string;
  readonly credentials: RootCredentials;
  readonly taskQueueId: string;
  readonly workerType: string;
  /** Its workerId: the label of every Docker object it creates. */
  readonly workerId: string;
  /** The root queue client of the deployment. */
  readonly queue: any;
  readonly deploymentCommand: WorkerCommand | undefined;
  readonly #ownsStateDir: boolean;
  readonly #keep: boolean;

  private constructor(command: WorkerCommand, stateDir: string, credentials: RootCredentials, workerType: string, workerId: string,
    deploymentCommand: WorkerCommand | undefined, ownsStateDir: boolean, keep: boolean) {
    this.command = command;
    this.workerId = workerId;
    this.stateDir = stateDir;
    this.credentials = credentials;
    this.workerType = workerType;
    this.taskQueueId = `bench/${workerType}`;
    this.deploymentCommand = deploymentCommand;
    this.queue = new taskcluster.Queue({ rootUrl: credentials.rootUrl, credentials: { clientId: credentials.clientId, accessToken: credentials.accessToken } });
    this.#ownsStateDir = ownsStateDir;
    this.#keep = keep;
  }

  get pid(): number { return this.command.pid; }

  static async start(options: WorkerStartOptions): Promise<WorkerProcess> {
    const stateDir = options.stateDir ?? mkdtempSync(path.join(os.tmpdir(), `bench-${options.name}-`));
    const suffix = randomBytes(3).toString('hex');
    const workerType = options.workerType ?? `${options.name}-${suffix}`;
    const workerId = `${options.name}-${suffix}`;
    let deploymentCommand: WorkerCommand | undefined;
    let remote: RootCredentials | undefined;
    if (options.deployment === 'separate') {
      const started = await startDeployment(stateDir, options.cpuProfDir ? path.join(options.cpuProfDir, 'deployment') : undefined, options.serveArgs);
      deploymentCommand = started.command;
      remote = started.credentials;
    }
    // The bench's own client (worker.queue) always talks to the deployment directly.
    let workerRootUrl = remote?.rootUrl;
    try {
      if (remote && options.rootUrlVia) workerRootUrl = await options.rootUrlVia(remote.rootUrl);
    } catch (err) {
      await deploymentCommand?.stop(5000);
      throw err;
    }
    const env = baseEnv({
      WORKER_STATE_DIR: stateDir,
      WORKER_LOG_LEVEL: options.logLevel ?? 'info',
      ...(remote ? { TASKCLUSTER_ROOT_URL: workerRootUrl, TASKCLUSTER_CLIENT_ID: remote.clientId, TASKCLUSTER_ACCESS_TOKEN: remote.accessToken } : {}),
      ...profileEnv(options.cpuProfDir ? path.join(options.cpuProfDir, 'worker') : undefined),
      ...options.env,
    });
    const command = new WorkerCommand([
      'start', '--provisioner-id', 'bench', '--worker-type', workerType, '--worker-group', 'bench',
      '--worker-id', workerId, '--capacity', String(options.capacity), ...options.args ?? [],
    ], env);
    try {
      let credentials = remote;
      if (!credentials) {
        await command.waitForStdout(/^credentials: (.+)$/, 60_000);
        credentials = JSON.parse(readFileSync(path.join(stateDir, 'embedded', 'credentials.json'), 'utf8')) as RootCredentials;
      }
      const worker = new WorkerProcess(command, stateDir, credentials, workerType, workerId, deploymentCommand, !options.stateDir, options.keepStateDir ?? false);
      if (!options.noWait) await command.waitForMessage('worker started', 60_000);
      return worker;
    } catch (err) {
      await command.stop(5000);
      await deploymentCommand?.stop(5000);
      if (!options.stateDir && !options.keepStateDir) rmSync(stateDir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Stops the worker (SIGTERM: running tasks are resolved worker-shutdown) and its state; ms until it exited. */
  async stop(): Promise<number> {
    const t0 = performance.now();
    await this.command.stop();
    const ms = performance.now() - t0;
    await this.deploymentCommand?.stop();
    if (this.#ownsStateDir && !this.#keep) rmSync(this.stateDir, { recursive: true, force: true });
    return ms;
  }
}
