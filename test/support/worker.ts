// A real worker for integration tests: a Taskcluster deployment (the embedded one, or the one
// named by TASKCLUSTER_ROOT_URL and root credentials: see deployment.ts) and the worker in this
// process, talking over HTTP with taskcluster-client; a fresh task queue, workerId and state
// directory per harness, so tests never see each other's tasks or containers (the real
// services share one database). The worker log is captured so tests can assert on its events
// ("claimed task", "task resolved", ...).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import Transport from 'winston-transport';
import taskcluster from 'taskcluster-client';
import { startDeployment, type TestDeployment } from './deployment.ts';
import { loadConfig, type WorkerConfig } from '../../lib/config/load.ts';
import { startWorker, type RunningWorker } from '../../lib/worker.ts';
import type { QueueClient, TaskStatus } from '../../lib/queue/taskcluster.ts';
import { DOCKER_SOCKET } from './docker.ts';

export interface LogEvent { message: string; level: string; [k: string]: unknown }

class CaptureTransport extends Transport {
  readonly events: LogEvent[] = [];
  override log(info: LogEvent, next: () => void): void {
    this.events.push(info);
    next();
  }
}

export interface HarnessOptions {
  /** Config overrides as dotted keys (e.g. {'capacity': 4, 'allowPrivileged': true}). */
  config?: Record<string, unknown>;
  /**
   * The claim timeout (seconds) the test is written for. The embedded deployment uses it; an
   * external deployment has its own, so `task.reclaimMarginSeconds` is shifted by the difference:
   * the worker reclaims as long after each claim as the test expects.
   */
  claimTimeoutSeconds?: number;
  /** Don't start the worker (tests that start it themselves). */
  noWorker?: boolean;
  /** Reuse a state dir (restart tests). */
  stateDir?: string;
  /** Where the embedded deployment's signed blob URLs (artifact PUTs and GETs) point. */
  blobUrlBase?: string;
}

export class WorkerHarness {
  readonly stateDir: string;
  readonly config: WorkerConfig;
  readonly deployment: TestDeployment;
  // taskcluster-client has no types; tests call many of its methods.
  readonly queue: QueueClient & Record<string, any>;
  readonly capture: CaptureTransport;
  worker: RunningWorker | undefined;
  private readonly ownsStateDir: boolean;

  private constructor(stateDir: string, ownsStateDir: boolean, config: WorkerConfig, deployment: TestDeployment, capture: CaptureTransport) {
    this.stateDir = stateDir; this.ownsStateDir = ownsStateDir; this.config = config; this.deployment = deployment; this.capture = capture;
    this.queue = new taskcluster.Queue({ rootUrl: deployment.rootUrl, credentials: deployment.credentials });
  }

  get rootUrl(): string { return this.deployment.rootUrl; }
  get credentials(): TestDeployment['credentials'] { return this.deployment.credentials; }

  static async start(options: HarnessOptions = {}): Promise<WorkerHarness> {
    const stateDir = options.stateDir ?? mkdtempSync(path.join(os.tmpdir(), 'worker-test-'));
    const suffix = randomBytes(4).toString('hex');
    const capture = new CaptureTransport();
    const log = winston.createLogger({ level: 'debug', transports: [capture] });
    const deployment = await startDeployment({ stateDir, log, claimTimeoutSeconds: options.claimTimeoutSeconds, blobUrlBase: options.blobUrlBase });
    const overrides = { ...options.config };
    const margin = overrides['task.reclaimMarginSeconds'];
    if (options.claimTimeoutSeconds !== undefined && typeof margin === 'number') {
      overrides['task.reclaimMarginSeconds'] = margin + deployment.claimTimeoutSeconds - options.claimTimeoutSeconds;
    }
    const config = loadConfig({
      env: {},
      overrides: {
        // The engine the tests' own checks use (testEngine(): DOCKER_SOCKET, else the default).
        'docker.socketPath': DOCKER_SOCKET,
        stateDir, provisionerId: 'test-prov', workerType: `wt-${suffix}`, workerGroup: 'test-group', workerId: `w-${suffix}`,
        'image.pullRetries': 0, 'image.pullBaseDelayMs': 100, 'task.cancelPollSeconds': 1,
        ...overrides,
      },
    });
    const harness = new WorkerHarness(stateDir, !options.stateDir, config, deployment, capture);
    if (!options.noWorker) await harness.startWorker();
    return harness;
  }

  async startWorker(): Promise<RunningWorker> {
    const log = winston.createLogger({ level: 'debug', transports: [this.capture] });
    this.worker = await startWorker(this.config, { rootUrl: this.rootUrl, credentials: this.credentials }, log);
    return this.worker;
  }

  get taskQueueId(): string { return `${this.config.provisionerId}/${this.config.workerType}`; }

  /**
   * Creates a task for this harness's queue with the given payload; returns its taskId (given
   * beforehand when the payload depends on it, e.g. encryptedEnv).
   */
  async submit(payload: Record<string, unknown>, extra: Record<string, unknown> = {}, taskId: string = taskcluster.slugid()): Promise<string> {
    await this.queue.createTask(taskId, {
      taskQueueId: this.taskQueueId,
      created: new Date().toISOString(),
      deadline: taskcluster.fromNow('1 hour').toISOString(),
      metadata: { name: 'test task', description: 'integration test', owner: 'test@localhost.localdomain', source: 'https://localhost/test' },
      payload,
      ...extra,
    });
    return taskId;
  }

  /** Waits until the task is resolved (or the timeout passes) and returns its status. */
  async waitForResolution(taskId: string, timeoutMs = 120_000): Promise<TaskStatus> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const { status } = await this.queue.status(taskId);
      if (['completed', 'failed', 'exception'].includes(status.state)) return status;
      if (Date.now() > end) throw new Error(`task ${taskId} not resolved after ${timeoutMs} ms (state ${status.state})`);
      await sleep(100);
    }
  }

  /** Waits until a run of the task is resolved. */
  async waitForRun(taskId: string, runId: number, timeoutMs = 120_000): Promise<TaskStatus['runs'][number]> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const { status } = await this.queue.status(taskId);
      const run = status.runs.find((r) => r.runId === runId);
      if (run && !['pending', 'running'].includes(run.state)) return run;
      if (Date.now() > end) throw new Error(`run ${taskId}/${runId} not resolved after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /** Waits until the task is running. */
  async waitForRunning(taskId: string, timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const { status } = await this.queue.status(taskId);
      if (status.state === 'running') return;
      if (Date.now() > end) throw new Error(`task ${taskId} not running after ${timeoutMs} ms (state ${status.state})`);
      await sleep(50);
    }
  }

  /** The text of an artifact of a run (following redirects), or its HTTP status when not 2xx. */
  async artifact(taskId: string, runId: number, name: string): Promise<{ status: number; text: string; headers: Headers }> {
    const url = this.queue.buildSignedUrl(this.queue.getArtifact, taskId, runId, name) as string;
    const res = await fetch(url);
    return { status: res.status, text: await res.text(), headers: res.headers };
  }

  /** The task log of a run (the backing log, through the live log link). */
  async taskLog(taskId: string, runId = 0): Promise<string> {
    const { status, text } = await this.artifact(taskId, runId, 'public/logs/live.log');
    if (status !== 200) throw new Error(`live.log of ${taskId}/${runId} answered ${status}: ${text}`);
    return text;
  }

  async listArtifacts(taskId: string, runId = 0): Promise<{ name: string; storageType: string; contentType: string }[]> {
    const out = await this.queue.listArtifacts(taskId, runId) as { artifacts: { name: string; storageType: string; contentType: string }[] };
    return out.artifacts;
  }

  /** Worker log events with this message (and, optionally, this taskId). */
  events(message: string, taskId?: string): LogEvent[] {
    return this.capture.events.filter((e) => e.message === message && (taskId === undefined || e.taskId === taskId));
  }

  async stop(): Promise<void> {
    await this.worker?.shutdown('test over');
    await this.deployment.close();
    if (this.ownsStateDir) rmSync(this.stateDir, { recursive: true, force: true });
  }
}
