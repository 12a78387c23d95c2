// Time-driven rules on both deployments: a claim not reclaimed expires (claim-expired, with a
// retry), a task past its deadline is resolved deadline-exceeded and can no longer be reclaimed.
// What happens is compared exactly; when it happens is compared within a tolerance, because the
// real queue's resolvers poll (claim expiry within seconds, deadlines within about a minute)
// while the embedded queue applies both at its next sweep (1 s) or at the first request that
// reads the task. That difference is deliberate: a worker cannot tell them apart except by how
// long a status read keeps saying `running`, and it must (and does) cope with both.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import taskcluster from 'taskcluster-client';
import { startSides, skipWithoutReal, answer, createAndClaim, until, type Side, type Sides } from './sides.ts';

let sides: Sides;
before(async () => { if (!skipWithoutReal) sides = await startSides(); });
after(async () => { await sides?.close(); });
const skip = skipWithoutReal;

/** How late after the rule's moment each deployment may act, in seconds. */
const TOLERANCE = { embedded: { claim: 3, deadline: 3 }, real: { claim: 45, deadline: 120 } };

const resolvedRun0 = (s: Side, taskId: string, ms: number) => until(`run 0 of ${taskId} to be resolved on ${s.name}`, ms, async () => {
  const { status } = await s.queue.status(taskId);
  return status.runs[0].state === 'running' ? undefined : status;
});

async function claimExpiry(s: Side) {
  const { taskId, claim, worker } = await createAndClaim(s, { retries: 1 });
  const takenUntil = Date.parse(claim.takenUntil);
  const status = await resolvedRun0(s, taskId, (s.claimTimeoutSeconds + TOLERANCE[s.name].claim + 5) * 1000);
  const late = (Date.now() - takenUntil) / 1000;
  assert.ok(late <= TOLERANCE[s.name].claim, `${s.name}: the claim expired ${late} s after takenUntil`);
  return {
    runs: status.runs.map((r: any) => `${r.state}/${r.reasonResolved ?? r.reasonCreated}`),
    reclaim: await answer(worker.reclaimTask(taskId, 0)),
    report: await answer(worker.reportCompleted(taskId, 0)),
  };
}

async function deadline(s: Side) {
  const deadlineAt = Date.now() + 4000;
  const { taskId, worker } = await createAndClaim(s, { deadline: new Date(deadlineAt).toJSON() });
  await new Promise((r) => setTimeout(r, deadlineAt - Date.now() + 500));
  const reclaimAfterDeadline = await answer(worker.reclaimTask(taskId, 0));
  const status = await resolvedRun0(s, taskId, (TOLERANCE[s.name].deadline + 5) * 1000);
  const late = (Date.now() - deadlineAt) / 1000;
  assert.ok(late <= TOLERANCE[s.name].deadline, `${s.name}: the deadline was acted on ${late} s after it passed`);
  return {
    reclaimAfterDeadline,
    state: status.state,
    runs: status.runs.map((r: any) => `${r.state}/${r.reasonResolved}`),
    report: await answer(worker.reportCompleted(taskId, 0)),
    create: await answer(s.queue.createTask(taskcluster.slugid(), {
      taskQueueId: s.newTaskQueueId(), created: new Date().toJSON(), deadline: new Date(Date.now() - 1000).toJSON(), payload: {},
      metadata: { name: 'past', description: 'deadline in the past', owner: 'tests@example.com', source: 'https://example.com/x' },
    })),
  };
}

test('claim expiry and deadlines: the same outcome on both deployments, each on time within its tolerance', { skip, timeout: 240_000 }, async () => {
  const [claimE, claimR, deadlineE, deadlineR] = await Promise.all([
    claimExpiry(sides.embedded), claimExpiry(sides.real), deadline(sides.embedded), deadline(sides.real),
  ]);
  assert.deepEqual(claimE, claimR, 'claim expiry: embedded (actual) against real (expected)');
  assert.deepEqual(claimR.runs, ['exception/claim-expired', 'pending/retry']);
  assert.deepEqual(deadlineE, deadlineR, 'deadline: embedded (actual) against real (expected)');
  assert.deepEqual(deadlineR.reclaimAfterDeadline, { status: 409, code: 'RequestConflict' });
  assert.deepEqual(deadlineR.runs, ['exception/deadline-exceeded']);
});
