// Golden tests of the plan stage: every valid payload fixture -> validate -> plan, compared
// with test/fixtures/plans/<name>.json. Regenerate after an intended change with
//   UPDATE_GOLDEN=1 node --test test/unit/plan-golden.test.ts
// and review the diff.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { planTask } from '../../lib/task/plan.ts';
import type { PlanInput, WorkerSettings } from '../../lib/task/plan.ts';
import type { TaskDefinition } from '../../lib/task/types.ts';
import { validatePayload } from '../../lib/task/validate.ts';
import { validFixtures } from '../fixtures/payloads/load.ts';
import { ALL_FEATURES } from '../support/features.ts';

const UPDATE = process.env.UPDATE_GOLDEN === '1';
const allFeatures = ALL_FEATURES;

/** A worker that allows everything, in the task's own pool. */
function workerFor(task: TaskDefinition): WorkerSettings {
  return {
    provisionerId: task.provisionerId,
    workerType: task.workerType,
    workerGroup: 'us-east-1',
    workerId: 'i-0123456789abcdef0',
    rootUrl: 'https://tc.example.com',
    instanceType: 'm5.xlarge',
    publicIp: '203.0.113.7',
    workerLocation: '{"cloud":"aws","region":"us-east-1","availabilityZone":"us-east-1a"}',
    allowPrivileged: true,
    allowDisableSeccomp: true,
    devices: {
      kvm: { enabled: true, path: '/dev/kvm' },
      hostSharedMemory: { enabled: true, path: '/dev/shm' },
      loopbackVideo: { enabled: true, path: '/dev/video3' },
      loopbackAudio: { enabled: true, path: '/dev/snd' },
    },
    workerVersion: '0.1.0-golden',
    hostname: 'worker-1.example.com',
    relengAPI: { url: 'https://relengapi.example.com', token: 'golden-issuing-token' },
    sidecars: { balrogVPNProxy: { image: 'balrog-vpn-proxy:golden' }, balrogStageVPNProxy: { image: 'balrog-vpn-proxy:golden' } },
  };
}

export function goldenInput(task: TaskDefinition): PlanInput {
  const checked = validatePayload(task.payload, task, { features: allFeatures });
  if (!checked.ok) throw new Error(checked.errors.join('\n'));
  return {
    taskId: 'dSlITZ4yQgmvxxAi4A8fHQ',
    runId: 0,
    task,
    payload: checked.payload,
    claim: { takenUntil: '2030-01-01T00:20:00.000Z' },
    worker: workerFor(task),
    features: allFeatures,
  };
}

describe('plans of every payload generation match their golden files', () => {
  for (const fixture of validFixtures()) {
    test(fixture.name, () => {
      const plan = JSON.parse(JSON.stringify(planTask(goldenInput(fixture.task))));
      const file = new URL(`../fixtures/plans/${fixture.name}.json`, import.meta.url);
      if (UPDATE) writeFileSync(file, `${JSON.stringify(plan, null, 2)}\n`);
      assert.ok(existsSync(file), `no golden plan ${fixture.name}.json: run with UPDATE_GOLDEN=1 and review it`);
      assert.deepEqual(plan, JSON.parse(readFileSync(file, 'utf8')));
    });
  }
});
