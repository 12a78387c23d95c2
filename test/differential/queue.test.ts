// The same requests to the embedded deployment and to the real Taskcluster services, and what
// each answers compared: status codes, error codes, response shapes and defaults. Where they
// differ the embedded deployment changes; a difference kept on purpose is named in the test.
import { test, before, after } from 'node:test';
import taskcluster from 'taskcluster-client';
import { startSides, skipWithoutReal, answer, keys, taskDefinition, createAndClaim, bothAnswerAlike, type Side, type Sides } from './sides.ts';

let sides: Sides;
before(async () => { if (!skipWithoutReal) sides = await startSides(); });
after(async () => { await sides?.close(); });

const same = <T>(scenario: (s: Side) => Promise<T>) => bothAnswerAlike(sides, scenario);

const skip = skipWithoutReal;

test('createTask: the same answer shape, defaults, idempotent repeat and 409 for a different definition', { skip }, () => same(async (s) => {
  const taskId = taskcluster.slugid();
  const taskQueueId = s.newTaskQueueId();
  const definition = taskDefinition(taskQueueId);
  const created = await s.queue.createTask(taskId, definition);
  const task = await s.queue.task(taskId);
  return {
    answerKeys: keys(created),
    statusKeys: keys(created.status),
    state: created.status.state,
    runs: created.status.runs.map((r: any) => ({ keys: keys(r), runId: r.runId, state: r.state, reasonCreated: r.reasonCreated })),
    identity: [created.status.taskQueueId === taskQueueId, created.status.provisionerId, created.status.workerType === taskQueueId.split('/')[1]],
    defaults: {
      schedulerId: task.schedulerId, projectId: task.projectId, priority: task.priority, retries: task.retries,
      requires: task.requires, routes: task.routes, scopes: task.scopes, tags: task.tags, extra: task.extra, taskGroupIsTaskId: task.taskGroupId === taskId,
    },
    taskKeys: keys(task),
    repeat: await answer(s.queue.createTask(taskId, definition)),
    different: await answer(s.queue.createTask(taskId, { ...definition, payload: { other: true } })),
  };
}));

test('error codes: unknown task 404, bad input and bad URL parameters 400, wrong token or empty-scope certificate 401, missing scope 403', { skip }, () => same(async (s) => {
  const taskQueueId = s.newTaskQueueId();
  const temporary = (scopes: string[]) => taskcluster.createTemporaryCredentials({ start: new Date(), expiry: taskcluster.fromNow('1 hour'), scopes, credentials: s.credentials });
  const { taskId } = await createAndClaim(s);
  return {
    unknownTask: await answer(s.queue.task(taskcluster.slugid())),
    unknownStatus: await answer(s.queue.status(taskcluster.slugid())),
    missingMetadata: await answer(s.queue.createTask(taskcluster.slugid(), { ...taskDefinition(taskQueueId), metadata: undefined })),
    badTaskId: await answer(s.queue.task('not a slug')),
    wrongToken: await answer(s.client('Queue', { clientId: s.credentials.clientId, accessToken: 'wrong-token-wrong-token-wrong-token-wrong' }).createTask(taskcluster.slugid(), taskDefinition(taskQueueId))),
    missingScope: await answer(s.client('Queue', temporary(['queue:get-task:x'])).createTask(taskcluster.slugid(), taskDefinition(taskQueueId))),
    // taskcluster-client signs an empty scope list differently from how the auth service checks it: 401.
    emptyScopeCertificate: await answer(s.client('Queue', temporary([])).createTask(taskcluster.slugid(), taskDefinition(taskQueueId))),
    unknownReason: await answer(s.queue.reportException(taskId, 0, { reason: 'because' })),
    unknownRun: await answer(s.queue.reclaimTask(taskId, 7)),
  };
}));

test('claim, reclaim and resolution: the same shapes, credentials and conflict rules', { skip }, () => same(async (s) => {
  const { taskId, claim, worker } = await createAndClaim(s);
  const reclaimed = await worker.reclaimTask(taskId, 0);
  const reclaimer = s.client('Queue', reclaimed.credentials);
  const certificate = JSON.parse(claim.credentials.certificate);
  return {
    claimKeys: keys(claim),
    claimStatus: [claim.status.state, claim.runId, claim.workerGroup, claim.workerId],
    credentialKeys: keys(claim.credentials),
    certificateScopes: certificate.scopes.filter((sc: string) => sc.includes(taskId)).map((sc: string) => sc.replace(taskId, '<taskId>')).sort(),
    takenUntilParses: !Number.isNaN(Date.parse(claim.takenUntil)),
    reclaimKeys: keys(reclaimed),
    claimCannotClaim: await answer(worker.claimWork(claim.task.taskQueueId, { workerGroup: 'diff-group', workerId: 'diff-worker', tasks: 1 })),
    completed: await answer(reclaimer.reportCompleted(taskId, 0)),
    completedAgain: await answer(reclaimer.reportCompleted(taskId, 0)),
    failedAfter: await answer(reclaimer.reportFailed(taskId, 0)),
    reclaimAfter: await answer(reclaimer.reclaimTask(taskId, 0)),
    finalState: (await s.queue.status(taskId)).status.state,
  };
}));

test('exceptions: worker-shutdown and intermittent-task rerun (retry, task-retry), malformed-payload ends the task', { skip }, () => same(async (s) => {
  const outcomes: Record<string, unknown> = {};
  for (const reason of ['worker-shutdown', 'intermittent-task', 'malformed-payload', 'internal-error', 'resource-unavailable']) {
    const { taskId, worker } = await createAndClaim(s);
    await worker.reportException(taskId, 0, { reason });
    const { status } = await s.queue.status(taskId);
    outcomes[reason] = { state: status.state, runs: status.runs.map((r: any) => `${r.state}/${r.reasonResolved ?? r.reasonCreated}`) };
  }
  return outcomes;
}));

test('cancelTask: a running run becomes exception/canceled; the worker learns it by a 409 on reclaim and report', { skip }, () => same(async (s) => {
  const { taskId, worker } = await createAndClaim(s);
  const cancelled = await s.queue.cancelTask(taskId);
  return {
    answerKeys: keys(cancelled),
    run: `${cancelled.status.runs[0].state}/${cancelled.status.runs[0].reasonResolved}`,
    reclaim: await answer(worker.reclaimTask(taskId, 0)),
    report: await answer(worker.reportCompleted(taskId, 0)),
    cancelAgain: await answer(s.queue.cancelTask(taskId)),
  };
}));

test('dependencies: a task waiting on another is unscheduled, then pending once the other completes', { skip }, () => same(async (s) => {
  const { taskId: first, worker } = await createAndClaim(s);
  const dependent = taskcluster.slugid();
  const created = await s.queue.createTask(dependent, taskDefinition(s.newTaskQueueId(), { dependencies: [first] }));
  await worker.reportCompleted(first, 0);
  let state = created.status.state;
  for (let i = 0; i < 100 && state === 'unscheduled'; i++) {
    await new Promise((r) => setTimeout(r, 200));
    state = (await s.queue.status(dependent)).status.state;
  }
  return { before: created.status.state, after: state, dependents: keys(await s.queue.listDependentTasks(first)) };
}));

test('task group expiry: an hour after its first task expires, moved only by a later-expiring task', { skip }, () => same(async (s) => {
  const taskQueueId = s.newTaskQueueId();
  const taskGroupId = taskcluster.slugid();
  const expiresAt = (days: number) => new Date(Date.parse('2100-01-01T00:00:00.000Z') + days * 86_400_000).toJSON();
  const offset = async () => Date.parse((await s.queue.getTaskGroup(taskGroupId)).expires) - Date.parse(expiresAt(0));
  const create = (days: number) => s.queue.createTask(taskcluster.slugid(), { ...taskDefinition(taskQueueId), taskGroupId, expires: expiresAt(days) });
  await create(0);
  const first = await offset();
  await create(-1);
  const earlier = await offset();
  await create(1);
  const later = await offset();
  return { first, earlier, later };
}));
