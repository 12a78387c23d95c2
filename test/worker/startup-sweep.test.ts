// When the worker starts, it removes what an earlier life of the same workerId left behind
// (containers, networks, temporary files) — and nothing else on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, dockerCli, removeOwnedBy, testEngine, testWorkerId } from '../support/docker.ts';

test('startup removes containers and networks labelled with this workerId, and leaves the others alone', async () => {
  const engine = testEngine();
  const h = await WorkerHarness.start({ noWorker: true });
  const workerId = h.config.workerId;
  const otherWorkerId = testWorkerId('other-worker');
  const unlabelledName = `unlabelled-${randomBytes(4).toString('hex')}`;
  try {
    // A task container of an earlier life, still running, and one that had exited.
    const running = await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['sleep', '300'] }, { workerId, taskId: 'leftoverTaskIdAAAAAAAA', runId: 0 });
    await engine.startContainer(running);
    const exited = await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['true'] }, { workerId, taskId: 'leftoverTaskIdBBBBBBBB', runId: 0 });
    await engine.createNetwork(`leftover-${randomBytes(4).toString('hex')}`, { workerId });
    const others = await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['true'] }, { workerId: otherWorkerId });
    const othersNetwork = await engine.createNetwork(`other-${randomBytes(4).toString('hex')}`, { workerId: otherWorkerId });
    const unlabelled = dockerCli(['create', '--name', unlabelledName, TASKENV_PASS, 'true']);

    await h.startWorker();

    assert.deepEqual(await engine.listOwnedContainers(workerId), []);
    assert.deepEqual(await engine.listOwnedNetworks(workerId), []);
    const removed = h.events('removing leftover container').map((e) => e.containerId).sort();
    assert.deepEqual(removed, [running, exited].sort());
    assert.equal(h.events('removing leftover network').length, 1);

    assert.deepEqual((await engine.listOwnedContainers(otherWorkerId)).map((c) => c.id), [others]);
    assert.deepEqual((await engine.listOwnedNetworks(otherWorkerId)).map((n) => n.id), [othersNetwork]);
    assert.equal(dockerCli(['inspect', '--format', '{{.Id}}', unlabelledName]), unlabelled);

    // And the worker goes on to run tasks.
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['taskhost-who', 'after', 'sweep'], maxRunTime: 60 });
    assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  } finally {
    await h.stop();
    await removeOwnedBy(engine, workerId);
    await removeOwnedBy(engine, otherWorkerId);
    try { dockerCli(['rm', '-f', unlabelledName]); } catch { /* already gone */ }
  }
});

test('startup removes task logs and artifact spools an earlier process left in <stateDir>/tmp', async () => {
  const h = await WorkerHarness.start({ noWorker: true });
  const tmp = path.join(h.stateDir, 'tmp');
  try {
    mkdirSync(path.join(tmp, 'task-log-AbC123'), { recursive: true });
    writeFileSync(path.join(tmp, 'task-log-AbC123', 'live_backing.log'), 'a log nobody will upload\n');
    mkdirSync(path.join(tmp, 'artifact-xyz'), { recursive: true });
    writeFileSync(path.join(tmp, 'artifact-xyz', 'data'), 'half an upload');
    writeFileSync(path.join(tmp, 'not-ours.txt'), 'left alone');
    mkdirSync(path.join(tmp, 'interactive-q1w2e3'), { recursive: true });
    writeFileSync(path.join(tmp, 'interactive-q1w2e3', 'hold.sh'), 'a hold wrapper of a dead run');

    await h.startWorker();

    assert.deepEqual(readdirSync(tmp).sort(), ['not-ours.txt']);
    assert.deepEqual(h.events('removed leftover temporary file').map((e) => path.basename(String(e.path))).sort(), ['artifact-xyz', 'interactive-q1w2e3', 'task-log-AbC123']);
  } finally {
    await h.stop();
  }
});

test('startup removes images this workerId committed for dockerSave and never removed, and no other image', async () => {
  const engine = testEngine();
  const h = await WorkerHarness.start({ noWorker: true });
  const workerId = h.config.workerId;
  const otherWorkerId = testWorkerId('other-worker');
  const container = await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['true'] }, { workerId, taskId: 'leftoverTaskIdCCCCCCCC', runId: 0 });
  const suffix = randomBytes(4).toString('hex');
  try {
    const committed = await engine.commitContainer(container, `leftover-save-${suffix}`, 'latest', { workerId, extra: { 'taskcluster.committed-image': 'true' } });
    const othersCommitted = await engine.commitContainer(container, `others-save-${suffix}`, 'latest', { workerId: otherWorkerId, extra: { 'taskcluster.committed-image': 'true' } });
    await engine.removeContainer(container);

    await h.startWorker();

    assert.equal(await engine.inspectImage(committed), undefined, 'the leftover committed image is gone');
    assert.ok(await engine.inspectImage(othersCommitted), "another worker's image stays");
    assert.ok(await engine.inspectImage(TASKENV_PASS), 'the task image stays');
    assert.equal(h.events('removing leftover committed image').length, 1);
  } finally {
    await h.stop();
    await engine.removeContainer(container);
    await engine.removeImage(`others-save-${suffix}:latest`, { force: true });
    await engine.removeImage(`leftover-save-${suffix}:latest`, { force: true });
  }
});
