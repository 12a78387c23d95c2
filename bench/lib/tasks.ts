// Tasks for the worker under test: submit with the deployment's root credentials, wait for
// the worker's own 'task resolved' event (its timestamp is the resolution time), read logs.
import taskcluster from 'taskcluster-client';
import type { WorkerEvent, WorkerProcess } from './worker-process.ts';
import { median } from './stats.ts';

export interface Submitted { taskId: string; /** Date.now() before createTask */ submittedAt: number; /** after createTask answered */ createdAt: number }

export function taskDefinition(taskQueueId: string, payload: Record<string, unknown>, name = 'bench task'): Record<string, unknown> {
  return {
    taskQueueId,
    created: new Date().toISOString(),
    deadline: taskcluster.fromNow('2 hours').toISOString(),
    expires: taskcluster.fromNow('1 day').toISOString(),
    metadata: { name, description: 'make bench', owner: 'bench@localhost.localdomain', source: 'https://localhost/bench' },
    payload,
  };
}

export async function submitTask(worker: WorkerProcess, payload: Record<string, unknown>, name?: string, extra: Record<string, unknown> = {}): Promise<Submitted> {
  const taskId = taskcluster.slugid() as string;
  const submittedAt = Date.now();
  await worker.queue.createTask(taskId, { ...taskDefinition(worker.taskQueueId, payload, name), ...extra });
  return { taskId, submittedAt, createdAt: Date.now() };
}

/** Waits for 'task resolved'; throws with the task log's tail unless it completed. */
export async function waitResolved(worker: WorkerProcess, taskId: string, timeoutMs: number, expectState = 'completed'): Promise<WorkerEvent> {
  const event = await worker.command.waitForMessage('task resolved', timeoutMs, taskId);
  if (expectState && event.taskState !== expectState) {
    const log = await taskLog(worker, taskId).catch((err: Error) => `(no task log: ${err.message})`);
    throw new Error(`task ${taskId} resolved ${String(event.taskState)}, not ${expectState}; its log ends:\n${log.slice(-2000)}`);
  }
  return event;
}

/** The task log (the backing log once the task resolved) of run 0. */
export async function taskLog(worker: WorkerProcess, taskId: string, runId = 0): Promise<string> {
  const url = worker.queue.buildSignedUrl(worker.queue.getArtifact, taskId, runId, 'public/logs/live.log') as string;
  const res = await fetch(url);
  const text = await res.text();
  if (!res.ok) throw new Error(`live.log answered ${res.status}: ${text.slice(0, 300)}`);
  return text;
}

/** Runs `fn` over `items` with at most `concurrency` at once; results in order. */
export async function pool<T, R>(items: T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return results;
}

/**
 * The worker's own breakdown of a run (the 'task timings' event, logged just after 'task
 * resolved'): ms since the claim at the end of each stage, e.g. liveLogPublished, imageReady,
 * containerCreated, containerExited, artifactsCollected, cleanedUp, logUploaded, resolved.
 * Undefined when this worker build does not log it.
 */
export async function stageTimings(worker: WorkerProcess, taskId: string): Promise<Record<string, number> | undefined> {
  try {
    const event = await worker.command.waitForMessage('task timings', 3000, taskId);
    return (event.ms ?? undefined) as Record<string, number> | undefined;
  } catch {
    return undefined;
  }
}

const STAGE_ORDER = ['liveLogPublished', 'imageReady', 'containerCreated', 'containerExited', 'artifactsCollected', 'cleanedUp', 'logUploaded', 'resolved'];

/**
 * Medians of the time (ms since the claim) at which each stage ended, earliest first. Marks,
 * not durations: the live log publication overlaps stage 3 and the cleanup overlaps the log
 * upload, so the difference of two neighbouring marks is not a stage's cost.
 */
export function stageMarks(timings: Array<Record<string, number> | undefined>): Record<string, number> {
  const present = timings.filter((t): t is Record<string, number> => t !== undefined);
  const keys = [...new Set(present.flatMap((t) => Object.keys(t)))];
  const medians = keys.map((key) => [key, median(present.flatMap((t) => t[key] === undefined ? [] : [t[key]!]))] as const);
  // Ties (two marks in the same millisecond) keep the order TaskRun marks them in.
  const rank = (key: string) => { const i = STAGE_ORDER.indexOf(key); return i < 0 ? STAGE_ORDER.length : i; };
  return Object.fromEntries(medians.sort((a, b) => a[1] - b[1] || rank(a[0]) - rank(b[0])));
}

export function describeStages(marks: Record<string, number>): string {
  const entries = Object.entries(marks);
  if (!entries.length) return '(no \'task timings\' event from this worker)';
  return entries.map(([k, v]) => `${k} ${Math.round(v)}`).join(', ');
}
