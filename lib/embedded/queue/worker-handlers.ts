// Worker metadata: provisioners, worker types and task queues that have been active, the
// workers seen in each, quarantine and declareWorker.
import { ApiError } from '../api/errors.ts';
import type { Handler } from '../api/service.ts';
import type { WorkerStore, WorkerInfo, TaskQueueInfo } from './worker-store.ts';
import { splitTaskQueueId } from './types.ts';
import { identifierParam, taskQueueIdParam, pageOf, withToken } from './request-params.ts';
import { transaction, type Database } from '../store.ts';

function workerResponse(w: WorkerInfo) {
  const out: Record<string, unknown> = {
    ...splitTaskQueueId(w.taskQueueId),
    taskQueueId: w.taskQueueId,
    workerGroup: w.workerGroup,
    workerId: w.workerId,
    recentTasks: w.recentTasks,
    expires: w.expires,
    firstClaim: w.firstClaim,
    lastDateActive: w.lastDateActive,
  };
  if (w.quarantineUntil !== undefined) out.quarantineUntil = w.quarantineUntil;
  if (w.quarantineDetails.length > 0) out.quarantineDetails = w.quarantineDetails;
  return out;
}

function workerTypeResponse(q: TaskQueueInfo) {
  return { ...splitTaskQueueId(q.taskQueueId), ...q };
}

const notFound = (message: string, details: Record<string, unknown>) => new ApiError('ResourceNotFound', message, details);

export function workerHandlers(db: Database, workers: WorkerStore): Record<string, Handler> {
  function queueOfParams(req: Parameters<Handler>[0]): string {
    return `${identifierParam(req, 'provisionerId')}/${req.params.workerType ?? ''}`;
  }
  const provisioner = (p: { provisionerId: string; expires: string; lastDateActive: string }) =>
    ({ ...p, description: '', stability: 'experimental' });

  return {
    listProvisioners: (req) => {
      const page = pageOf(req);
      const list = workers.provisioners(Date.now(), page.offset, page.limit);
      return withToken({ provisioners: list.map(provisioner) }, page, list.length);
    },
    getProvisioner: (req) => {
      const provisionerId = identifierParam(req, 'provisionerId');
      const [found] = workers.provisioners(Date.now(), 0, 1, provisionerId);
      if (!found) throw notFound(`Provisioner \`${provisionerId}\` not found. Are you sure it was created?`, { provisionerId });
      return provisioner(found);
    },

    listWorkerTypes: (req) => {
      const provisionerId = identifierParam(req, 'provisionerId');
      const page = pageOf(req);
      const list = workers.taskQueues(Date.now(), page.offset, page.limit, provisionerId);
      return withToken({ workerTypes: list.map(workerTypeResponse) }, page, list.length);
    },
    getWorkerType: (req) => {
      const taskQueueId = queueOfParams(req);
      const found = workers.taskQueue(taskQueueId, Date.now());
      if (!found) {
        throw notFound(`Worker-type \`${req.params.workerType}\` with Provisioner \`${req.params.provisionerId}\` not found. Are you sure it was created?`,
          { provisionerId: req.params.provisionerId, workerType: req.params.workerType });
      }
      return workerTypeResponse(found);
    },

    listTaskQueues: (req) => {
      const page = pageOf(req);
      const list = workers.taskQueues(Date.now(), page.offset, page.limit);
      return withToken({ taskQueues: list }, page, list.length);
    },
    getTaskQueue: (req) => {
      const taskQueueId = taskQueueIdParam(req);
      const found = workers.taskQueue(taskQueueId, Date.now());
      if (!found) throw notFound(`Task queue with \`${taskQueueId}\` not found. Are you sure it was created?`, { taskQueueId });
      return found;
    },

    listWorkers: (req) => {
      const taskQueueId = queueOfParams(req);
      const q = req.query.quarantined;
      if (q !== undefined && q !== 'true' && q !== 'false') throw new ApiError('InputError', 'quarantined must be `true` or `false`');
      const page = pageOf(req);
      const now = Date.now();
      const list = workers.workers(taskQueueId, now, q === undefined ? undefined : q === 'true', page.offset, page.limit);
      return withToken({
        workers: list.map((w) => {
          const entry: Record<string, unknown> = { workerGroup: w.workerGroup, workerId: w.workerId, firstClaim: w.firstClaim, lastDateActive: w.lastDateActive };
          const latest = w.recentTasks.at(-1);
          if (latest) entry.latestTask = latest;
          if (w.quarantineUntil && Date.parse(w.quarantineUntil) > now) entry.quarantineUntil = w.quarantineUntil;
          return entry;
        }),
      }, page, list.length);
    },
    getWorker: (req) => {
      const taskQueueId = queueOfParams(req);
      const { workerGroup, workerId } = req.params;
      const now = Date.now();
      const w = workers.worker(taskQueueId, workerGroup, workerId);
      const expired = w && Date.parse(w.expires) < now && !(w.quarantineUntil && Date.parse(w.quarantineUntil) > now);
      if (!w || expired) {
        throw notFound(`Worker ${workerGroup}/${workerId} of task queue \`${taskQueueId}\` not found. Are you sure it was created?`,
          { taskQueueId, workerGroup, workerId });
      }
      return workerResponse(w);
    },

    quarantineWorker: (req) => {
      const taskQueueId = queueOfParams(req);
      const { workerGroup, workerId } = req.params;
      const { quarantineUntil, quarantineInfo } = req.body as { quarantineUntil: string; quarantineInfo?: string };
      const w = transaction(db, () => workers.quarantine(taskQueueId, workerGroup, workerId, {
        clientId: req.clientId ?? 'anonymous',
        updatedAt: new Date().toJSON(),
        quarantineUntil: new Date(Date.parse(quarantineUntil)).toJSON(),
        quarantineInfo: quarantineInfo ?? '',
      }));
      if (!w) {
        throw notFound(`Worker ${workerGroup}/${workerId} of task queue \`${taskQueueId}\` not found.`, { taskQueueId, workerGroup, workerId });
      }
      return workerResponse(w);
    },

    declareWorker: (req) => {
      const taskQueueId = queueOfParams(req);
      const { workerGroup, workerId } = req.params;
      req.authorize({ properties: Object.keys(req.body as object) });
      const { expires } = req.body as { expires: string };
      const now = Date.now();
      const w = transaction(db, () => {
        workers.workerSeen(taskQueueId, workerGroup, workerId, now, Date.parse(expires));
        return workers.worker(taskQueueId, workerGroup, workerId)!;
      });
      return workerResponse(w);
    },
  };
}
