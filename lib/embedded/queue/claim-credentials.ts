// The temporary credentials a claim carries, as the real queue issues them: signed by the
// queue's service client, expiring at `takenUntil`, with the scopes to reclaim, resolve and
// create artifacts for exactly this run, plus the task's own scopes.
import taskcluster from 'taskcluster-client';

export interface TaskCredentials { clientId: string; accessToken: string; certificate: string }

export function claimScopes(taskId: string, runId: number, taskScopes: string[]): string[] {
  return [
    `queue:reclaim-task:${taskId}/${runId}`,
    `queue:resolve-task:${taskId}/${runId}`,
    `queue:create-artifact:${taskId}/${runId}`,
    ...taskScopes,
  ];
}

export function claimCredentials(issuer: { clientId: string; accessToken: string }, taskId: string, runId: number,
  takenUntil: number, taskScopes: string[], now = Date.now()): TaskCredentials {
  const credentials = taskcluster.createTemporaryCredentials({
    start: new Date(Math.min(now, takenUntil)),
    expiry: new Date(takenUntil),
    scopes: claimScopes(taskId, runId, taskScopes),
    credentials: { clientId: issuer.clientId, accessToken: issuer.accessToken },
  });
  return { clientId: credentials.clientId, accessToken: credentials.accessToken, certificate: credentials.certificate };
}
