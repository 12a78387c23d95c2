// Labels on every Docker object the worker creates (containers, networks, volumes), so the
// worker can find what it owns (startup reconciliation, garbage collection) and never touches
// anything else on the host.

/** Present (value "true") on everything the worker creates. */
export const LABEL_OWNER = 'taskcluster.docker-worker';
/** The workerId of the worker that created the object. */
export const LABEL_WORKER_ID = 'taskcluster.worker-id';
/** The task the object belongs to, when it belongs to one. */
export const LABEL_TASK_ID = 'taskcluster.task-id';
/** The run of that task. */
export const LABEL_RUN_ID = 'taskcluster.run-id';
/** On a volume the engine adapter created for an image's VOLUME (an anonymous volume). */
export const LABEL_ANONYMOUS_VOLUME = 'taskcluster.anonymous-volume';

/** Who an object belongs to: always a worker, sometimes a task run. */
export interface Owner {
  workerId: string;
  taskId?: string;
  runId?: number;
  /** Further labels (e.g. a feature name); the owner labels above always win. */
  extra?: Record<string, string>;
}

export function ownerLabels(owner: Owner): Record<string, string> {
  if (!owner.workerId) throw new Error('An owner needs a workerId to label Docker objects');
  const labels: Record<string, string> = { ...owner.extra, [LABEL_OWNER]: 'true', [LABEL_WORKER_ID]: owner.workerId };
  if (owner.taskId !== undefined) labels[LABEL_TASK_ID] = owner.taskId;
  if (owner.runId !== undefined) labels[LABEL_RUN_ID] = String(owner.runId);
  return labels;
}

/** Docker API `label` filters selecting objects owned by the worker (or by one workerId). */
export function ownerLabelFilters(workerId?: string): string[] {
  const filters = [`${LABEL_OWNER}=true`];
  if (workerId !== undefined) filters.push(`${LABEL_WORKER_ID}=${workerId}`);
  return filters;
}

/** True when labels (as read back from Docker) mark an object as ours. */
export function isOwned(labels: Record<string, string> | null | undefined, workerId?: string): boolean {
  if (!labels || labels[LABEL_OWNER] !== 'true') return false;
  return workerId === undefined || labels[LABEL_WORKER_ID] === workerId;
}

/** On an image the worker committed from a task's container (dockerSave): removed after its upload. */
export const LABEL_COMMITTED_IMAGE = 'taskcluster.committed-image';
