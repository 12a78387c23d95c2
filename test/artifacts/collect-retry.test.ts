// Artifacts out of a real container (Docker engine) into the embedded deployment, when the
// storage fails once: the retry reads the file again from the stopped container's archive.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { collectArtifacts } from '../../lib/task/collect.ts';
import { TaskLog } from '../../lib/log/task-log.ts';
import { testEngine, testWorkerId, removeOwnedBy, TASKENV_PASS } from '../support/docker.ts';
import { startDeployment, claimedRun, publisherFor, downloadArtifact, type Deployment } from './embedded-run.ts';
import { startFlakyProxy } from './flaky-proxy.ts';

const engine = testEngine();
const workerId = testWorkerId('collect-retry');
let container = '';
let d: Deployment;

before(async () => {
  d = await startDeployment();
  container = await engine.createContainer({
    Image: TASKENV_PASS,
    Cmd: ['/bin/sh', '-c', 'mkdir -p /out/sub && head -c 2000000 /dev/urandom > /out/sub/data.bin && echo hello > /out/hello.txt && cp /out/sub/data.bin /data.bin'],
  }, { workerId });
  await engine.startContainer(container);
  assert.equal((await engine.waitContainer(container)).exitCode, 0);
});

after(async () => { await removeOwnedBy(engine, workerId); await d.close(); });

async function sha256InContainer(path: string): Promise<string> {
  const tar = await engine.getArchive(container, path);
  const { archivedFile } = await import('../../lib/artifacts/extract.ts');
  const hash = crypto.createHash('sha256');
  for await (const chunk of await archivedFile(tar, path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

for (const failPuts of [1, 3]) {
  test(`${failPuts} failed storage PUT(s): file and directory artifacts are re-read from the container and arrive whole`, async () => {
    const proxy = await startFlakyProxy(d.rootUrl, failPuts, 503);
    const log = await TaskLog.create();
    try {
      const run = await claimedRun(d);
      const publisher = publisherFor(proxy.url, run, { retry: { retries: 4, baseDelayMs: 5 } });
      const expires = run.expires;
      const result = await collectArtifacts(engine, container, [
        { name: 'public/data.bin', path: '/data.bin', type: 'file', expires },
        { name: 'public/out', path: '/out', type: 'directory', expires },
      ], publisher, log);
      assert.equal(result.uploadFailure, undefined);
      assert.equal(proxy.failedPuts, failPuts);
      assert.deepEqual(result.uploaded.map((u) => u.name).sort(), ['public/data.bin', 'public/out/hello.txt', 'public/out/sub/data.bin']);
      const expected = await sha256InContainer('/data.bin');
      assert.equal((await downloadArtifact(d.queue, run.taskId, 'public/data.bin')).sha256, expected);
      assert.equal((await downloadArtifact(d.queue, run.taskId, 'public/out/sub/data.bin')).sha256, expected);
      assert.equal((await downloadArtifact(d.queue, run.taskId, 'public/out/hello.txt')).text, 'hello\n');
      for (const u of result.uploaded.filter((x) => x.name.endsWith('data.bin'))) assert.equal(u.sha256, expected);
    } finally {
      await log.close(); await log.release();
      await proxy.close();
    }
  });
}
