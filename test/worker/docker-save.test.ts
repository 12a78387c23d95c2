// dockerSave as a task owner sees it: after the task, `public/dockerImage.tar` is the task's
// container as an image (`docker load` it and the files the task wrote are there), each cache
// is `public/cache/<name>.tar`, both expire within 7 days; the committed image is gone from the
// worker's engine afterwards, on success and failure alike.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';
import { committedImageName } from '../../lib/features/docker-save.ts';

let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start({ config: { 'interactive.minTimeSeconds': 1, 'interactive.expirySeconds': 1 } }); });
after(async () => { await h?.stop(); });

/** An artifact's bytes (following redirects; fetch undoes any gzip content encoding). */
async function artifactBytes(taskId: string, name: string): Promise<Buffer> {
  const url = h.queue.buildSignedUrl(h.queue.getArtifact, taskId, 0, name) as string;
  const res = await fetch(url);
  assert.equal(res.status, 200, `${name} answered ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

async function tarEntries(bytes: Buffer): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => chunks.push(c as Buffer));
    stream.on('end', () => { out.set(header.name, Buffer.concat(chunks).toString('utf8')); next(); });
  });
  await new Promise<void>((resolve, reject) => { extract.on('finish', resolve); extract.on('error', reject); Readable.from([bytes]).pipe(extract); });
  return out;
}

const imageGone = (taskId: string) => spawnSync('docker', ['image', 'inspect', `${committedImageName(taskId, 0)}:latest`]).status !== 0;

test('the saved image loads with docker load and holds what the task wrote; the cache is a tar of its files', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', 'echo written-by-the-task > /saved.txt && echo in-the-cache > /cache/kept.txt'],
    maxRunTime: 120,
    cache: { 'save-cache': '/cache' },
    features: { dockerSave: true },
  }, { scopes: ['docker-worker:cache:save-cache'] });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'completed', await h.taskLog(taskId));
  assert.ok(imageGone(taskId), 'the committed image was removed from the engine');

  const listed = await h.listArtifacts(taskId);
  const image = listed.find((a) => a.name === 'public/dockerImage.tar');
  assert.ok(image, 'public/dockerImage.tar exists');
  assert.equal(image.contentType, 'application/x-tar');
  const expires = (await h.queue.listArtifacts(taskId, 0) as { artifacts: { name: string; expires: string }[] }).artifacts.find((a) => a.name === 'public/dockerImage.tar')!.expires;
  assert.ok(new Date(expires).getTime() <= Date.now() + 7 * 86_400_000 + 60_000, 'expires within 7 days');

  const bytes = await artifactBytes(taskId, 'public/dockerImage.tar');
  const loaded = execFileSync('docker', ['load'], { input: bytes }).toString();
  const name = `${committedImageName(taskId, 0)}:latest`;
  assert.match(loaded, new RegExp(`Loaded image: ${name}`));
  try {
    const seen = execFileSync('docker', ['run', '--rm', name, 'cat', '/saved.txt']).toString();
    assert.equal(seen, 'written-by-the-task\n');
  } finally {
    spawnSync('docker', ['image', 'rm', '-f', name]);
  }

  const cache = await tarEntries(await artifactBytes(taskId, 'public/cache/save-cache.tar'));
  assert.equal(cache.get('./kept.txt'), 'in-the-cache\n');
  assert.match(await h.taskLog(taskId), /dockerSave: uploaded public\/dockerImage\.tar \(\d+ bytes\)/);
});

test('a failing task is saved too, keeps its result, and leaves no committed image', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo before-failing > /f.txt; exit 3'], maxRunTime: 120, features: { dockerSave: true },
  });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'failed');
  assert.equal(status.runs[0]?.reasonResolved, 'failed');
  assert.ok((await h.listArtifacts(taskId)).some((a) => a.name === 'public/dockerImage.tar'));
  assert.ok(imageGone(taskId));
});

test('a payload artifact named public/dockerImage.tar is refused while dockerSave is on', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS, command: ['true'], maxRunTime: 60, features: { dockerSave: true },
    artifacts: { 'public/dockerImage.tar': { type: 'file', path: '/x' } },
  });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs[0]?.reasonResolved, 'malformed-payload');
  assert.match(await h.taskLog(taskId), /dockerSave feature uploads itself/);
});

test('with s3 storage the image is gzip-encoded on the wire, as docker-worker sent it', async () => {
  const s3 = await WorkerHarness.start({ config: { 'artifacts.storageType': 's3' } });
  try {
    const taskId = await s3.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo s3 > /s3.txt'], maxRunTime: 120, features: { dockerSave: true } });
    assert.equal((await s3.waitForResolution(taskId)).state, 'completed');
    let url = s3.queue.buildSignedUrl(s3.queue.getArtifact, taskId, 0, 'public/dockerImage.tar') as string;
    let res: Response;
    for (;;) {
      res = await fetch(url, { redirect: 'manual', headers: { 'accept-encoding': 'gzip' } });
      if (res.status < 300 || res.status >= 400) break;
      url = new URL(res.headers.get('location')!, url).toString();
    }
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-encoding'), 'gzip');
    const name = `${committedImageName(taskId, 0)}:latest`;
    execFileSync('docker', ['load'], { input: Buffer.from(await res.arrayBuffer()) }); // fetch undid the gzip
    try {
      assert.equal(execFileSync('docker', ['run', '--rm', name, 'cat', '/s3.txt']).toString(), 's3\n');
    } finally {
      spawnSync('docker', ['image', 'rm', '-f', name]);
    }
  } finally {
    await s3.stop();
  }
});

test('with interactive too, the saved image starts as the task image did (not through the worker\'s hold wrapper)', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo both > /both.txt'], maxRunTime: 120, features: { dockerSave: true, interactive: true },
  });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed', await h.taskLog(taskId));
  const name = `${committedImageName(taskId, 0)}:latest`;
  execFileSync('docker', ['load'], { input: await artifactBytes(taskId, 'public/dockerImage.tar') });
  try {
    assert.equal(execFileSync('docker', ['run', '--rm', name, 'cat', '/both.txt']).toString(), 'both\n');
  } finally {
    spawnSync('docker', ['image', 'rm', '-f', name]);
  }
});
