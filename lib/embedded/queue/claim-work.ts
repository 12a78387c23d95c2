// The worker interface for taking work: claimWork (long-poll), claimTask (legacy) and
// reclaimTask. A claim marks the run running for `claimTimeoutSeconds` and hands out
// temporary credentials for that run; claims happen inside one transaction, so concurrent
// callers never get the same run, and the answer is checked against the schema before the
// transaction commits.
import type { IncomingMessage } from 'node:http';
import { ApiError, conflict, notFound } from '../api/errors.ts';
import type { ApiRequest, Handler } from '../api/service.ts';
import type { EmbeddedContext } from '../context.ts';
import type { QueueCore } from './queue-core.ts';
import type { WorkerStore } from './worker-store.ts';
import type { TaskRecord } from './types.ts';
import { splitTaskQueueId } from './types.ts';
import { taskIdParam, runIdParam, taskQueueIdParam } from './request-params.ts';
import { taskStatus, lastRun } from './task-status.ts';
import { claimRun, reclaimRun } from './run-transitions.ts';
import { claimCredentials } from './claim-credentials.ts';
import { schemaId, validateAgainst } from '../api/references.ts';

const CLAIM_WORK_RESPONSE = schemaId('queue', 'v1/claim-work-response.json#');
const TASK_CLAIM_RESPONSE = schemaId('queue', 'v1/task-claim-response.json#');

interface Worker { workerGroup: string; workerId: string }
interface Claimed { record: TaskRecord; runId: number; takenUntil: number }

/** The real queue writes the top-level `takenUntil` of a claim with a `+00:00` offset. */
const withOffset = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '+00:00');

/** Aborts when the caller's connection closes (a long-poll must then claim nothing for it). */
function connectionClosed(raw: IncomingMessage): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const socket = raw.socket;
  const onClose = () => controller.abort();
  if (!socket || socket.destroyed) controller.abort();
  else socket.once('close', onClose);
  return { signal: controller.signal, dispose: () => { socket?.off('close', onClose); } };
}

export function claimHandlers(ctx: EmbeddedContext, core: QueueCore, workers: WorkerStore): Record<string, Handler> {
  const claimTimeoutMs = () => ctx.settings.claimTimeoutSeconds * 1000;

  function claimResponse(c: Claimed, worker: Worker) {
    return {
      status: taskStatus(c.record),
      runId: c.runId,
      workerGroup: worker.workerGroup,
      workerId: worker.workerId,
      takenUntil: withOffset(c.takenUntil),
      task: c.record.definition,
      credentials: claimCredentials(ctx.serviceCredentials,
        { taskId: c.record.taskId, runId: c.runId, ...worker, takenUntil: c.takenUntil }, c.record.definition.scopes),
    };
  }

  /**
   * The answer to a claim, checked against the official schema inside the claim's transaction:
   * if it does not match, the transaction rolls back (a 500), so a run is never claimed by a
   * worker that was not told about it.
   */
  function checkedResponse(schema: string, wrap: (r: ReturnType<typeof claimResponse>) => unknown, c: Claimed, worker: Worker) {
    const response = claimResponse(c, worker);
    const errors = validateAgainst(schema, wrap(response));
    if (errors.length) {
      throw new Error(`claim of ${c.record.taskId}/${c.runId} not made: its answer does not match ${schema}: ${errors.join('; ')}`);
    }
    return response;
  }

  function claimPending(taskQueueId: string, worker: Worker, count: number): ReturnType<typeof claimResponse>[] {
    return core.change((tx) => {
      const claimed: ReturnType<typeof claimResponse>[] = [];
      for (const taskId of core.tasks.pendingTaskIds(taskQueueId, count, tx.now)) {
        const record = tx.load(taskId);
        const run = record && lastRun(record);
        if (!record || !run || run.state !== 'pending') continue;
        const takenUntil = tx.now + claimTimeoutMs();
        if (!claimRun(record, run.runId, worker, takenUntil, tx.now)) continue;
        claimed.push(checkedResponse(CLAIM_WORK_RESPONSE, (r) => ({ tasks: [r] }), { record, runId: run.runId, takenUntil }, worker));
        tx.save(record);
      }
      workers.workerSeen(taskQueueId, worker.workerGroup, worker.workerId, tx.now);
      workers.tasksClaimed(taskQueueId, worker.workerGroup, worker.workerId, claimed.map((c) => ({ taskId: c.status.taskId, runId: c.runId })));
      return claimed;
    });
  }

  const claimWork: Handler = (req) => core.waiters.track(() => longPoll(req));

  async function longPoll(req: ApiRequest): Promise<{ tasks: unknown[] }> {
    const taskQueueId = taskQueueIdParam(req);
    const { workerGroup, workerId, tasks: count } = req.body as Worker & { tasks: number };
    req.authorize({ workerGroup, workerId });
    const worker = { workerGroup, workerId };
    const waitMs = ctx.settings.claimWorkWaitSeconds * 1000;
    const until = Date.now() + waitMs;
    const closed = connectionClosed(req.raw);
    try {
      if (workers.isQuarantined(taskQueueId, workerGroup, workerId, Date.now())) {
        core.change((tx) => workers.workerSeen(taskQueueId, workerGroup, workerId, tx.now));
        await core.waiters.sleep(waitMs, closed.signal);
        return { tasks: [] };
      }
      for (;;) {
        if (closed.signal.aborted || core.waiters.isClosed) return { tasks: [] };
        const claimed = claimPending(taskQueueId, worker, count);
        if (claimed.length > 0) return { tasks: claimed };
        const remaining = until - Date.now();
        if (remaining <= 0) return { tasks: [] };
        if (await core.waiters.wait(taskQueueId, remaining, closed.signal) !== 'woken') return { tasks: [] };
      }
    } finally {
      closed.dispose();
    }
  }

  const claimTask: Handler = (req) => {
    const taskId = taskIdParam(req);
    const runId = runIdParam(req);
    const { workerGroup, workerId } = req.body as Worker;
    const found = core.tasks.get(taskId);
    if (!found) throw notFound(`Task \`${taskId}\``);
    const { provisionerId, workerType } = splitTaskQueueId(found.definition.taskQueueId);
    req.authorize({ workerGroup, workerId, provisionerId, workerType });
    const taskQueueId = found.definition.taskQueueId;
    if (workers.isQuarantined(taskQueueId, workerGroup, workerId, Date.now())) {
      throw conflict(`Worker ${workerGroup}/${workerId} is quarantined and cannot claim tasks.`, { workerGroup, workerId });
    }
    const outcome = core.change((tx): ReturnType<typeof claimResponse> | ApiError => {
      // The task was read above; should the sweep have deleted it (expired) since, answer 404,
      // not a 500. (Not reachable today: nothing awaits between the read and this transaction.)
      const record = tx.load(taskId);
      if (!record) return notFound(`Task \`${taskId}\``);
      if (Date.parse(record.definition.deadline) <= tx.now) {
        return conflict(`Task \`${taskId}\` can't be claimed past its deadline of ${record.definition.deadline}.`, { taskId, deadline: record.definition.deadline });
      }
      const run = record.runs[runId];
      if (!run) return notFound(`Run ${runId} of task \`${taskId}\``);
      workers.workerSeen(taskQueueId, workerGroup, workerId, tx.now);
      const isLatest = runId === record.runs.length - 1;
      if (isLatest && run.state === 'running' && run.workerGroup === workerGroup && run.workerId === workerId) {
        return claimResponse({ record, runId, takenUntil: Date.parse(run.takenUntil!) }, { workerGroup, workerId });
      }
      const takenUntil = tx.now + claimTimeoutMs();
      if (!claimRun(record, runId, { workerGroup, workerId }, takenUntil, tx.now)) {
        return conflict(`Run ${runId} was already claimed by another worker, or is not pending.`, { taskId, runId });
      }
      const response = checkedResponse(TASK_CLAIM_RESPONSE, (r) => r, { record, runId, takenUntil }, { workerGroup, workerId });
      tx.save(record);
      workers.tasksClaimed(taskQueueId, workerGroup, workerId, [{ taskId, runId }]);
      return response;
    });
    if (outcome instanceof ApiError) throw outcome;
    return outcome;
  };

  const reclaimTask: Handler = (req) => {
    const taskId = taskIdParam(req);
    const runId = runIdParam(req);
    const outcome = core.change((tx) => {
      const record = tx.load(taskId);
      if (!record) return notFound(`Task \`${taskId}\``);
      const run = record.runs[runId];
      if (!run) return notFound(`Run ${runId} of task \`${taskId}\``);
      if (Date.parse(record.definition.deadline) <= tx.now) {
        return conflict(`Task \`${taskId}\` can't be reclaimed past its deadline of ${record.definition.deadline}.`, { taskId, deadline: record.definition.deadline });
      }
      const takenUntil = tx.now + claimTimeoutMs();
      if (!reclaimRun(record, runId, takenUntil)) {
        return conflict(`Run ${runId} on task \`${taskId}\` is resolved or not running.`, { taskId, runId });
      }
      tx.save(record);
      workers.workerSeen(record.definition.taskQueueId, run.workerGroup!, run.workerId!, tx.now);
      return { record, run, takenUntil };
    });
    if (outcome instanceof ApiError) throw outcome;
    const { record, run, takenUntil } = outcome;
    return {
      status: taskStatus(record),
      runId,
      workerGroup: run.workerGroup,
      workerId: run.workerId,
      takenUntil: new Date(takenUntil).toJSON(),
      credentials: claimCredentials(ctx.serviceCredentials,
        { taskId, runId, workerGroup: run.workerGroup!, workerId: run.workerId!, takenUntil }, record.definition.scopes),
    };
  };

  return { claimWork, claimTask, reclaimTask };
}
