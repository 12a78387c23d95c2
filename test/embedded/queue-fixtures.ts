// Shared set-up for the embedded queue tests: a deployment on loopback with short timings
// whose every request and answer is checked against the official schemas (schema-check.ts),
// queue clients, task definitions, and schema checks of responses.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import { startCheckedEmbedded, schemaErrors, type CheckedDeployment } from './schema-check.ts';
import { silentLog } from '../../lib/log/worker-log.ts';

export interface TestQueue {
  /** Every API exchange with it is checked against the official schemas (close() fails on a problem). */
  deployment: CheckedDeployment;
  stateDir: string;
  /** A queue client with the root credentials. */
  queue: any;
  /** A queue client with other credentials (temporary, authorizedScopes...). */
  client(credentials: object | undefined, extra?: Record<string, unknown>): any;
  close(): Promise<void>;
}

export interface Timings { claimTimeoutSeconds?: number; claimWorkWaitSeconds?: number; sweepIntervalSeconds?: number }

export async function startQueue(timings: Timings = {}, stateDir?: string): Promise<TestQueue> {
  const dir = stateDir ?? mkdtempSync(path.join(os.tmpdir(), 'queue-test-'));
  const deployment = await startCheckedEmbedded({
    stateDir: dir, port: 0, log: silentLog,
    claimTimeoutSeconds: timings.claimTimeoutSeconds ?? 60,
    claimWorkWaitSeconds: timings.claimWorkWaitSeconds ?? 1,
    sweepIntervalSeconds: timings.sweepIntervalSeconds ?? 0.2,
  });
  const client = (credentials: object | undefined, extra: Record<string, unknown> = {}) =>
    new taskcluster.Queue({ rootUrl: deployment.rootUrl, credentials, retries: 0, ...extra });
  return {
    deployment, stateDir: dir, client,
    queue: client(deployment.credentials),
    async close() {
      try {
        await deployment.close();
      } finally {
        if (!stateDir) rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** A task queue of its own for each test, so tests never see each other's tasks. */
export function newTaskQueueId(): string {
  return `proj-test/t${crypto.randomBytes(6).toString('hex')}`;
}

export const slugid = (): string => taskcluster.slugid();
export const fromNow = (offset: string): string => taskcluster.fromNow(offset).toJSON();

export function taskDef(taskQueueId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    taskQueueId,
    created: new Date().toJSON(),
    deadline: fromNow('1 hour'),
    payload: { image: 'busybox', command: ['true'], maxRunTime: 60 },
    metadata: { name: 'queue test', description: 'a task of the queue tests', owner: 'tests@example.com', source: 'https://example.com/tests' },
    ...extra,
  };
}

/** The HTTP status and error code of a call (200 when it succeeds). */
export async function outcome(promise: Promise<unknown>): Promise<{ statusCode: number; code?: string; message: string }> {
  try {
    await promise;
    return { statusCode: 200, message: '' };
  } catch (err) {
    const e = err as { statusCode?: number; code?: string; body?: { code?: string; message?: string }; message: string };
    if (e.statusCode === undefined) throw err;
    return { statusCode: e.statusCode, code: e.body?.code ?? e.code, message: e.body?.message ?? e.message };
  }
}

/** Asserts a response matches the official queue schema `file` (e.g. 'task-status-response'). */
export function assertSchema(file: string, value: unknown): void {
  assert.deepEqual(schemaErrors(`/schemas/queue/v1/${file}.json#`, value), [], `response does not match ${file}.json`);
}

export const worker = (workerId = 'w1') => ({ workerGroup: 'wg', workerId, tasks: 1 });

/** Claims exactly one task from the queue (fails if none comes). */
export async function claimOne(queue: any, taskQueueId: string, workerId = 'w1'): Promise<any> {
  const result = await queue.claimWork(taskQueueId, worker(workerId));
  assertSchema('claim-work-response', result);
  assert.equal(result.tasks.length, 1, 'expected one claimed task');
  return result.tasks[0];
}

/** Polls `check` until it returns a value, up to `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined>, ms = 10_000, what = 'condition'): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
