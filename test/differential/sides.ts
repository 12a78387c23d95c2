// The two deployments a differential test compares: the embedded one, started here with the
// real one's claim timeout, and the real Taskcluster services (../shared/realtc), named by
// TASKCLUSTER_ROOT_URL + credentials, or by the root-credentials file realtc writes
// (REALTC_CREDENTIALS, default /var/cache/docker-worker/realtc-root.json, as `make realtc`
// starts it). `make test` sets REQUIRE_REAL_DEPLOYMENT=1, so a missing real deployment fails the
// run there; elsewhere these tests are skipped with the reason.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import taskcluster from 'taskcluster-client';
import { startEmbedded, type EmbeddedDeployment } from '../../lib/embedded/server.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import { externalDeployment } from '../support/deployment.ts';
import type { Credentials } from '../../lib/queue/taskcluster.ts';

export interface Side {
  name: 'embedded' | 'real';
  rootUrl: string;
  credentials: Credentials;
  claimTimeoutSeconds: number;
  /** A queue client with the root credentials (no retries: the first answer is what is compared). */
  queue: any;
  client(service: 'Queue' | 'Index' | 'PurgeCache' | 'Object' | 'Auth', credentials?: object): any;
  /** A task queue no other test uses (the real services share one database). */
  newTaskQueueId(): string;
}

interface RealDeployment { rootUrl: string; credentials: Credentials; claimTimeoutSeconds: number }

export function realDeployment(env: NodeJS.ProcessEnv = process.env): RealDeployment | undefined {
  const external = externalDeployment(env);
  if (external) return external;
  const file = env.REALTC_CREDENTIALS || '/var/cache/docker-worker/realtc-root.json';
  if (!existsSync(file)) return undefined;
  const { rootUrl, clientId, accessToken } = JSON.parse(readFileSync(file, 'utf8')) as { rootUrl: string; clientId: string; accessToken: string };
  return { rootUrl, credentials: { clientId, accessToken }, claimTimeoutSeconds: Number(env.TEST_CLAIM_TIMEOUT_SECONDS ?? 10) };
}

const real = realDeployment();
/** The `skip` option of every differential test: a reason when there is nothing to compare with. */
export const skipWithoutReal: string | false = real ? false :
  'no real Taskcluster deployment: `make realtc` starts one (or set TASKCLUSTER_ROOT_URL and root credentials)';
if (!real && process.env.REQUIRE_REAL_DEPLOYMENT) {
  throw new Error(`REQUIRE_REAL_DEPLOYMENT is set but ${skipWithoutReal}`);
}

function side(name: Side['name'], rootUrl: string, credentials: Credentials, claimTimeoutSeconds: number): Side {
  const client = (service: string, creds: object | undefined = credentials) =>
    new (taskcluster as any)[service]({ rootUrl, credentials: creds, retries: 0 });
  return {
    name, rootUrl, credentials, claimTimeoutSeconds, client, queue: client('Queue'),
    newTaskQueueId: () => `diff-prov/${name.slice(0, 3)}-${randomBytes(6).toString('hex')}`,
  };
}

export interface Sides { embedded: Side; real: Side; embeddedDeployment: EmbeddedDeployment; close(): Promise<void> }

export async function startSides(): Promise<Sides> {
  if (!real) throw new Error(skipWithoutReal as string);
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'differential-'));
  const embedded = await startEmbedded({ stateDir, port: 0, log: silentLog, claimTimeoutSeconds: real.claimTimeoutSeconds, sweepIntervalSeconds: 1 });
  return {
    embeddedDeployment: embedded,
    embedded: side('embedded', embedded.rootUrl, embedded.credentials, real.claimTimeoutSeconds),
    real: side('real', real.rootUrl, real.credentials, real.claimTimeoutSeconds),
    async close() {
      await embedded.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** The status and error code of a call: what the differential tests compare. */
export async function answer(promise: Promise<unknown>): Promise<{ status: number; code?: string }> {
  try {
    await promise;
    return { status: 200 };
  } catch (err) {
    const e = err as { statusCode?: number; body?: { code?: string }; code?: string };
    if (e.statusCode === undefined) throw err;
    return { status: e.statusCode, code: e.body?.code ?? e.code };
  }
}

/** The sorted keys of an object (response shapes are compared by their keys). */
export const keys = (value: unknown): string[] => Object.keys(value as object).sort();

export function taskDefinition(taskQueueId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    taskQueueId,
    created: new Date().toJSON(),
    deadline: taskcluster.fromNow('1 hour').toJSON(),
    payload: {},
    metadata: { name: 'differential', description: 'the same request to both deployments', owner: 'tests@example.com', source: 'https://example.com/differential' },
    ...extra,
  };
}

/** Creates a task and claims it; returns the claim. */
export async function createAndClaim(s: Side, extra: Record<string, unknown> = {}): Promise<{ taskId: string; claim: any; worker: any }> {
  const taskQueueId = s.newTaskQueueId();
  const taskId = taskcluster.slugid();
  await s.queue.createTask(taskId, taskDefinition(taskQueueId, extra));
  const { tasks } = await s.queue.claimWork(taskQueueId, { workerGroup: 'diff-group', workerId: 'diff-worker', tasks: 1 });
  if (tasks.length !== 1) throw new Error(`${s.name}: claimWork handed out ${tasks.length} tasks`);
  return { taskId, claim: tasks[0], worker: s.client('Queue', tasks[0].credentials) };
}

/** Waits (polling) until `check` gives a value. */
export async function until<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs `scenario` against both deployments at once and asserts they observed the same. */
export async function bothAnswerAlike<T>(sides: Sides, scenario: (s: Side) => Promise<T>): Promise<void> {
  const [embedded, real] = await Promise.all([scenario(sides.embedded), scenario(sides.real)]);
  assert.deepEqual(embedded, real, 'the embedded deployment (actual) answers as the real one (expected)');
}
