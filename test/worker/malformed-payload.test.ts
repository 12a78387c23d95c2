// A payload the worker cannot run is resolved exception/malformed-payload, and the log tells
// the owner every problem at once in plain words (no container is started).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';

let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start({ config: { capacity: 2 } }); });
after(async () => { await h?.stop(); });

async function refused(payload: Record<string, unknown>): Promise<string> {
  const taskId = await h.submit(payload);
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs.length, 1, 'a malformed payload is not retried');
  assert.equal(status.runs[0].reasonResolved, 'malformed-payload');
  const log = await h.taskLog(taskId);
  assert.doesNotMatch(log, /=== Task Starting ===/);
  assert.equal(h.events('task resolved', taskId)[0]?.taskState, 'exception/malformed-payload');
  return log;
}

test('several problems at once: each is listed in the log, naming its field', async () => {
  const log = await refused({
    image: TASKENV_PASS,
    command: 'echo not an array',
    maxRunTime: 'ten minutes',
    features: { noSuchFeature: true },
  });
  assert.match(log, /\[taskcluster:error\] `task\.payload` is not valid:/);
  const problems = log.split('\n').filter((l) => l.startsWith(' - '));
  assert.ok(problems.length >= 3, `problems listed:\n${problems.join('\n')}`);
  assert.ok(problems.includes(' - payload.command must be a list of strings, got "echo not an array"'), `command:\n${problems.join('\n')}`);
  assert.ok(problems.includes(' - payload.maxRunTime must be a number of seconds, got "ten minutes"'), `maxRunTime:\n${problems.join('\n')}`);
  assert.ok(problems.some((l) => /payload\.features\.noSuchFeature is not a docker-worker feature/.test(l)), `features:\n${problems.join('\n')}`);
});

test('a payload without an image or maxRunTime says both are required', async () => {
  const log = await refused({ command: ['true'] });
  assert.match(log, /^ - payload\.image is required/m);
  assert.match(log, /^ - payload\.maxRunTime is required: a number of seconds/m);
});

test('a feature this worker build does not provide is refused with a line naming it', async () => {
  const log = await refused({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60, features: { dind: true } });
  assert.match(log, /payload\.features\.dind is not available on this worker; remove it or set it to false/);
});

test('a retired feature is refused with what replaced it', async () => {
  const log = await refused({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60, features: { azureLiveLog: true } });
  assert.match(log, /payload\.features\.azureLiveLog is no longer supported \(the Azure live log was replaced by localLiveLog\)/);
});
