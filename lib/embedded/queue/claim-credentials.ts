// The temporary credentials a claim carries, as the real queue issues them: signed by the
// queue's service client (which holds auth:create-client:*), named
// task-client/<taskId>/<runId>/on/<workerGroup>/<workerId>/until/<takenUntil in seconds>,
// expiring at `takenUntil`, with the scopes to reclaim, resolve and create artifacts for
// exactly this run, plus the task's own scopes.
import taskcluster from 'taskcluster-client';

export interface TaskCredentials { clientId: string; accessToken: string; certificate: string }

export interface ClaimedRun {
  taskId: string;
  runId: number;
  workerGroup: string;
  workerId: string;
  /** Epoch milliseconds. */
  takenUntil: number;
}

export function claimScopes(taskId: string, runId: number, taskScopes: string[]): string[] {
  return [
    `queue:reclaim-task:${taskId}/${runId}`,
    `queue:resolve-task:${taskId}/${runId}`,
    `queue:create-artifact:${taskId}/${runId}`,
    ...taskScopes,
  ];
}

/** The clientId the real queue gives claim credentials (seconds may have a fraction). */
export function claimClientId(run: ClaimedRun): string {
  return ['task-client', run.taskId, `${run.runId}`, 'on', run.workerGroup, run.workerId, 'until', `${run.takenUntil / 1000}`].join('/');
}

export function claimCredentials(issuer: { clientId: string; accessToken: string }, run: ClaimedRun,
  taskScopes: string[], now = Date.now()): TaskCredentials {
  const credentials = taskcluster.createTemporaryCredentials({
    clientId: claimClientId(run),
    start: new Date(Math.min(now, run.takenUntil)),
    expiry: new Date(run.takenUntil),
    scopes: claimScopes(run.taskId, run.runId, taskScopes),
    credentials: { clientId: issuer.clientId, accessToken: issuer.accessToken },
  });
  return { clientId: credentials.clientId, accessToken: credentials.accessToken, certificate: credentials.certificate };
}
