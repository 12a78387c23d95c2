// The worker's only way to Taskcluster: taskcluster-client over HTTP. Clients are built
// here from a rootUrl and credentials (permanent ones for claiming, a claim's temporary
// ones for everything about that task run).
import http from 'node:http';
import https from 'node:https';
import taskcluster from 'taskcluster-client';
import { EARLIER_CLIENTS } from './worker-credentials.ts';

export interface Credentials { clientId: string; accessToken: string; certificate?: string }

export interface Deployment { rootUrl: string; credentials: Credentials }

// taskcluster-client has no type declarations: these are the calls the worker makes.
export interface QueueClient {
  claimWork(taskQueueId: string, payload: { workerGroup: string; workerId: string; tasks: number }): Promise<{ tasks: ClaimResponse[] }>;
  reclaimTask(taskId: string, runId: number): Promise<ReclaimResponse>;
  /** Deprecated in the queue but present (v106): claims a given run; superseding uses it. */
  claimTask(taskId: string, runId: number, payload: { workerGroup: string; workerId: string }): Promise<ClaimResponse>;
  reportCompleted(taskId: string, runId: number): Promise<unknown>;
  reportFailed(taskId: string, runId: number): Promise<unknown>;
  reportException(taskId: string, runId: number, payload: { reason: string }): Promise<unknown>;
  status(taskId: string): Promise<{ status: TaskStatus }>;
  task(taskId: string): Promise<Record<string, unknown>>;
  createTask(taskId: string, task: unknown): Promise<{ status: TaskStatus }>;
  createArtifact(taskId: string, runId: number, name: string, payload: unknown): Promise<Record<string, unknown>>;
  finishArtifact(taskId: string, runId: number, name: string, payload: unknown): Promise<unknown>;
  buildUrl(method: unknown, ...args: unknown[]): string;
  [other: string]: unknown;
}

export interface TaskStatus {
  taskId: string;
  state: 'unscheduled' | 'pending' | 'running' | 'completed' | 'failed' | 'exception';
  runs: { runId: number; state: string; reasonResolved?: string; workerGroup?: string; workerId?: string; takenUntil?: string }[];
  [k: string]: unknown;
}

export interface ClaimResponse {
  status: TaskStatus;
  runId: number;
  workerGroup: string;
  workerId: string;
  takenUntil: string;
  task: TaskDefinitionLike;
  credentials: Credentials;
}
export type ReclaimResponse = Omit<ClaimResponse, 'task'>;

export interface TaskDefinitionLike {
  taskQueueId?: string; provisionerId?: string; workerType?: string; schedulerId: string; taskGroupId: string;
  projectId?: string; dependencies: string[]; requires: string; routes: string[]; priority: string; retries: number;
  created: string; deadline: string; expires: string; scopes: string[]; payload: Record<string, unknown>;
  metadata: { name: string; description: string; owner: string; source: string }; tags: Record<string, string>; extra: Record<string, unknown>;
}

const Queue = (taskcluster as unknown as { Queue: new (o: unknown) => QueueClient }).Queue;

/**
 * Makes every taskcluster-client built from now on (a run's queue, object and artifact
 * clients, whoever builds them) share keep-alive connections. The library's default agents
 * open a new connection for every call (`keepAlive: false`): about seven per trivial task,
 * each a TCP handshake and a new server-side connection, on both sides. An idle connection
 * does not keep the process alive (Node unrefs free sockets), is dropped before the server's
 * own keep-alive timeout (Node reads its `Keep-Alive` header), and a call on one the server
 * closed meanwhile is a network error the client retries. Idempotent.
 */
export function shareKeepAliveConnections(): void {
  const agents = (taskcluster as unknown as { agents: { http: http.Agent; https: https.Agent } }).agents;
  if (KEEP_ALIVE.has(agents.http)) return;
  // maxSockets as the library's own defaults; free sockets up to the same number.
  const options = { keepAlive: true, maxSockets: 50, maxFreeSockets: 50 };
  agents.http = new http.Agent(options);
  agents.https = new https.Agent(options);
  KEEP_ALIVE.add(agents.http);
}
const KEEP_ALIVE = new WeakSet<http.Agent>();

export function queueClient(deployment: Deployment, options: { keepAliveAgent?: boolean; timeoutMs?: number; retries?: number } = {}): QueueClient {
  return new Queue({
    rootUrl: deployment.rootUrl,
    credentials: deployment.credentials,
    ...(options.keepAliveAgent ? { agent: { keepAlive: true } } : {}),
    ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
    ...(options.retries !== undefined ? { retries: options.retries } : {}),
  });
}

/**
 * Destroys the private HTTP agents of a client made with keepAliveAgent: in-flight calls fail at
 * once. A client that follows the worker's credentials (worker-credentials.ts) also aborts the
 * clients it was before the last replacement (a long poll may still run on one of them).
 */
export function abortClient(client: QueueClient): void {
  type Agents = { _httpAgent?: { http?: { destroy(): void }; https?: { destroy(): void } } };
  const earlier = (client as unknown as Record<symbol, unknown>)[EARLIER_CLIENTS] as Agents[] | undefined;
  for (const c of [client as unknown as Agents, ...(earlier ?? [])]) {
    c._httpAgent?.http?.destroy();
    c._httpAgent?.https?.destroy();
  }
}


/** Parses Taskcluster timestamps, including `+00:00` offsets. */
export function parseTime(value: string): Date {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new Error(`not a timestamp: ${value}`);
  return d;
}
