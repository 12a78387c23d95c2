// `--host worker-runner`: Taskcluster's worker-runner started this worker. It wrote the
// configuration (docker-worker's shape: rootUrl, credentials under `taskcluster`, workerId,
// workerGroup, provisionerId, workerType, publicIp, privateIp, instanceType, region,
// workerLocation, and the worker pool's own settings) to the file named by
// $DOCKER_WORKER_CONFIG, and talks to the worker over stdin/stdout (runner-protocol.ts):
//   new-credentials        the worker's credentials from now on (the next claimWork uses them)
//   graceful-termination   stop claiming; with finish-tasks the running tasks finish, without
//                          it they are resolved worker-shutdown; then the worker exits
//   shutdown (sent)        the worker stopped for being idle: worker-runner removes the worker
import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { ConfigError } from '../config/load.ts';
import type { WorkerLog } from '../log/worker-log.ts';
import type { Credentials } from '../queue/taskcluster.ts';
import { translateDockerWorkerConfig } from './docker-worker-config.ts';
import type { HostConfiguration, HostControls, WorkerHost } from './host.ts';
import { RunnerProtocol, type RunnerMessage } from './runner-protocol.ts';

export const RUNNER_CAPABILITIES = ['graceful-termination', 'shutdown', 'new-credentials'] as const;

export interface WorkerRunnerHostOptions {
  env?: NodeJS.ProcessEnv;
  input?: Readable;
  output?: Writable;
}

/** new-credentials → Credentials, or undefined when it lacks a client id or token. */
export function credentialsOf(msg: RunnerMessage): Credentials | undefined {
  const clientId = msg['client-id'];
  const accessToken = msg['access-token'];
  const certificate = msg.certificate;
  if (typeof clientId !== 'string' || !clientId || typeof accessToken !== 'string' || !accessToken) return undefined;
  const cert = certificate === undefined || certificate === null || certificate === '' ? undefined
    : typeof certificate === 'string' ? certificate : JSON.stringify(certificate);
  return { clientId, accessToken, ...(cert ? { certificate: cert } : {}) };
}

export class WorkerRunnerHost implements WorkerHost {
  readonly kind = 'worker-runner' as const;
  readonly #env: NodeJS.ProcessEnv;
  readonly #protocol: RunnerProtocol;
  #controls: HostControls | undefined;
  #log: WorkerLog | undefined;
  /** What arrived before the worker ran: applied on attach. */
  #pendingCredentials: Credentials | undefined;
  #pendingTermination: { finishTasks: boolean } | undefined;

  constructor(options: WorkerRunnerHostOptions = {}) {
    this.#env = options.env ?? process.env;
    // Listen at once: worker-runner's welcome comes as soon as the process starts.
    this.#protocol = new RunnerProtocol(options.input ?? process.stdin, options.output ?? process.stdout, RUNNER_CAPABILITIES);
    this.#protocol.on('new-credentials', (msg) => this.#newCredentials(msg));
    this.#protocol.on('graceful-termination', (msg) => this.#gracefulTermination(msg['finish-tasks'] === true));
  }

  async configure(): Promise<HostConfiguration> {
    const file = this.#env.DOCKER_WORKER_CONFIG;
    if (!file) throw new ConfigError('--host worker-runner reads its configuration from the file named by DOCKER_WORKER_CONFIG, which is not set: start the worker from worker-runner (implementation docker-worker), or use --host local');
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`DOCKER_WORKER_CONFIG names ${file}, which could not be read as JSON: ${(e as Error).message}`);
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`DOCKER_WORKER_CONFIG names ${file}, which must hold a JSON object of settings`);
    const { settings, ignored } = translateDockerWorkerConfig(raw as Record<string, unknown>);
    return { settings, ignored, source: `worker-runner (${file})` };
  }

  attach(controls: HostControls, log: WorkerLog): void {
    this.#controls = controls;
    this.#log = log;
    if (this.#pendingCredentials) controls.replaceCredentials(this.#pendingCredentials);
    if (this.#pendingTermination) this.#gracefulTermination(this.#pendingTermination.finishTasks);
    this.#pendingCredentials = this.#pendingTermination = undefined;
  }

  #newCredentials(msg: RunnerMessage): void {
    const credentials = credentialsOf(msg);
    if (!credentials) {
      this.#log?.warn('worker-runner sent new-credentials without a client-id or access-token; keeping the current credentials');
      return;
    }
    if (this.#controls) this.#controls.replaceCredentials(credentials);
    else this.#pendingCredentials = credentials;
  }

  #gracefulTermination(finishTasks: boolean): void {
    // Before the worker runs: remembered; one without finish-tasks wins over one with it.
    if (!this.#controls) { this.#pendingTermination = { finishTasks: (this.#pendingTermination?.finishTasks ?? true) && finishTasks }; return; }
    this.#log?.info('worker-runner asked for graceful termination', { finishTasks });
    void this.#controls.shutdown('graceful-termination', { finishTasks });
  }

  async idleShutdown(log: WorkerLog): Promise<void> {
    await Promise.race([this.#protocol.initialized, new Promise((r) => setTimeout(r, 1000).unref())]);
    if (this.#protocol.send({ type: 'shutdown' })) log.info('idle: asked worker-runner to shut the worker down');
    else log.warn('idle, but worker-runner did not offer the shutdown capability: exiting only');
  }

  async close(): Promise<void> {
    this.#protocol.close();
  }
}
