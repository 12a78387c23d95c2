// Payload fields and features as a task owner sees them end to end: bulkLog, localLiveLog
// false, volume artifacts, the header's Worker Type line, and an artifact upload that fails for good, where the footer
// and the resolution must agree.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';
import { TestProxy } from '../support/fault-proxy.ts';
import { startWorkerBehind } from './test-proxy.ts';

let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start({ config: { capacity: 2 } }); });
after(async () => { await h?.stop(); });

async function raw(harness: WorkerHarness, taskId: string, name: string): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const url = harness.queue.buildSignedUrl(harness.queue.getArtifact, taskId, 0, name) as string;
  const res = await fetch(url, { headers: { 'accept-encoding': 'identity' } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

test('bulkLog: public/logs/terminal_bulk.log.gz holds the whole log, footer included, gzipped', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'for i in 1 2 3; do echo "line $i"; done'], maxRunTime: 60, features: { bulkLog: true } });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const listed = Object.fromEntries((await h.listArtifacts(taskId)).map((a) => [a.name, a]));
  assert.match(listed['public/logs/terminal_bulk.log.gz']?.contentType ?? '', /^application\/gzip/, JSON.stringify(listed));
  const bulk = await raw(h, taskId, 'public/logs/terminal_bulk.log.gz');
  assert.equal(bulk.status, 200);
  const text = gunzipSync(bulk.body).toString('utf8');
  assert.equal(text, await h.taskLog(taskId), 'the bulk log is the complete task log');
  assert.match(text, /^line 3\r?$/m);
  assert.match(text, /Successful task run with exit code: 0 completed in/);
});

test('without bulkLog there is no bulk log artifact', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60 });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  assert.ok(!(await h.listArtifacts(taskId)).some((a) => a.name === 'public/logs/terminal_bulk.log.gz'));
});

test('localLiveLog false: no live log while the task runs; the complete log is still uploaded', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo early; sleep 3; echo late'], maxRunTime: 60, features: { localLiveLog: false } });
  await h.waitForRunning(taskId);
  assert.equal((await h.artifact(taskId, 0, 'public/logs/live.log')).status, 404, 'no live log reference while running');
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const listed = Object.fromEntries((await h.listArtifacts(taskId)).map((a) => [a.name, a.storageType]));
  assert.ok(listed['public/logs/live_backing.log'], JSON.stringify(listed));
  const log = await h.taskLog(taskId);
  assert.match(log, /^early\r?\n(.*\n)*late\r?$/m);
});

test('a volume artifact (payload v1) is uploaded like a directory', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', 'mkdir -p /vol/sub && echo one > /vol/one.txt && echo two > /vol/sub/two.txt'],
    maxRunTime: 60,
    artifacts: { 'public/vol': { type: 'volume', path: '/vol' } },
  });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const names = (await h.listArtifacts(taskId)).map((a) => a.name).filter((n) => n.startsWith('public/vol')).sort();
  assert.deepEqual(names, ['public/vol/one.txt', 'public/vol/sub/two.txt']);
  assert.equal((await h.artifact(taskId, 0, 'public/vol/sub/two.txt')).text, 'two\n');
});

test('the header keeps docker-worker\'s Worker Type line, after Worker Node Type', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60 });
  await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.match(log, new RegExp(`\\] Worker Node Type: \\S+\\n\\[taskcluster [^\\]]+\\] Worker Type: ${h.config.workerType}\\n`));
});

test('an artifact upload that fails for good: exception/internal-error, and the footer agrees (Unsuccessful)', async () => {
  const f = await WorkerHarness.start({ noWorker: true, config: { 'artifacts.uploadRetries': 0 } });
  const proxy = await TestProxy.start(f.rootUrl);
  try {
    proxy.answer('POST', /\/artifacts\/public%2Fresult\.txt$/, 500);
    await startWorkerBehind(f, proxy);
    const taskId = await f.submit({
      image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo result > /tmp/result.txt'], maxRunTime: 60,
      artifacts: { 'public/result.txt': { type: 'file', path: '/tmp/result.txt' } },
    });
    const status = await f.waitForResolution(taskId);
    assert.equal(status.state, 'exception');
    assert.equal(status.runs[0]!.reasonResolved, 'internal-error');
    const log = await f.taskLog(taskId);
    assert.match(log, /\[taskcluster:error\] Uploading artifact "public\/result\.txt" failed: /);
    assert.match(log, /Unsuccessful task run with exit code: 0 completed in/);
    assert.doesNotMatch(log, /\] Successful task run/);
  } finally {
    await f.stop();
    await proxy.close();
  }
});
