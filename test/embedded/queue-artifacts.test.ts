// Queue artifacts of every storage type against the embedded deployment, through
// taskcluster-client over real HTTP, created with the claim credentials of a running run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import http from 'node:http';
import path from 'node:path';
import { readdirSync, statSync } from 'node:fs';
import { Readable, Writable } from 'node:stream';
import taskcluster from 'taskcluster-client';
import {
  startQueue, newTaskQueueId, taskDef, claimOne, outcome, assertSchema, slugid, fromNow, eventually, type TestQueue,
} from './queue-fixtures.ts';

let q: TestQueue;

before(async () => { q = await startQueue(); });
after(async () => { await q.close(); });

interface RunningRun { taskId: string; runId: number; worker: any; claim: any }

/** A task claimed through claimWork; `worker` is a queue client with the claim's credentials. */
async function runningRun(extra: Record<string, unknown> = {}): Promise<RunningRun> {
  const taskQueueId = newTaskQueueId();
  const taskId = slugid();
  await q.queue.createTask(taskId, taskDef(taskQueueId, extra));
  const claim = await claimOne(q.queue, taskQueueId);
  return { taskId, runId: claim.runId, worker: q.client(claim.credentials), claim };
}

function sink(): { factory: () => Promise<Writable>; data: () => Buffer } {
  let chunks: Buffer[] = [];
  return {
    factory: async () => { chunks = []; return new Writable({ write(c: Buffer, _e, cb) { chunks.push(c); cb(); } }); },
    data: () => Buffer.concat(chunks),
  };
}

async function download(taskId: string, name: string, runId?: number, queue = q.queue): Promise<{ data: Buffer; contentType: string }> {
  const out = sink();
  const contentType = await taskcluster.downloadArtifact({ taskId, runId, name, queue, streamFactory: out.factory, retries: 0 });
  return { data: out.data(), contentType };
}

async function uploadObjectArtifact(run: RunningRun, name: string, bytes: Buffer, contentType: string, expires = fromNow('1 day')): Promise<any> {
  const created = await run.worker.createArtifact(run.taskId, run.runId, name, { storageType: 'object', contentType, expires });
  assertSchema('post-artifact-response', created);
  const object = new taskcluster.Object({ rootUrl: q.deployment.rootUrl, credentials: created.credentials, retries: 0 });
  await taskcluster.upload({
    projectId: created.projectId, name: created.name, contentType, contentLength: bytes.length, expires: new Date(created.expires),
    object, uploadId: created.uploadId, streamFactory: async () => Readable.from([bytes]), retries: 0,
  });
  return created;
}

async function putS3(run: RunningRun, name: string, body: Buffer, contentType: string, headers: Record<string, string> = {}): Promise<Response> {
  const created = await run.worker.createArtifact(run.taskId, run.runId, name, { storageType: 's3', contentType, expires: fromNow('1 day') });
  assertSchema('post-artifact-response', created);
  assert.equal(created.storageType, 's3');
  return fetch(created.putUrl, { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': contentType, ...headers } });
}

const artifactUrl = (queue: any, taskId: string, runId: number, name: string) => queue.buildUrl(queue.getArtifact, taskId, runId, name);

test('object artifact: upload(), 404 until finishArtifact, then downloadArtifact() and a 303 to the data', async () => {
  const run = await runningRun();
  const bytes = crypto.randomBytes(100 * 1024);
  const created = await uploadObjectArtifact(run, 'public/build/app.bin', bytes, 'application/x-app');
  assert.equal(created.name, `t/${run.taskId}/${run.runId}/public/build/app.bin`);
  assert.equal(created.projectId, 'none');

  assert.equal((await outcome(q.queue.getArtifact(run.taskId, run.runId, 'public/build/app.bin'))).statusCode, 404);
  assert.deepEqual((await q.queue.listArtifacts(run.taskId, run.runId)).artifacts, []);

  await run.worker.finishArtifact(run.taskId, run.runId, 'public/build/app.bin', { uploadId: created.uploadId });
  await run.worker.finishArtifact(run.taskId, run.runId, 'public/build/app.bin', { uploadId: created.uploadId }); // idempotent

  const got = await download(run.taskId, 'public/build/app.bin');
  assert.ok(got.data.equals(bytes));
  assert.equal(got.contentType, 'application/x-app');
  const viaRun = await download(run.taskId, 'public/build/app.bin', run.runId);
  assert.ok(viaRun.data.equals(bytes));

  const redirect = await fetch(artifactUrl(q.queue, run.taskId, run.runId, 'public/build/app.bin'), { redirect: 'manual' });
  assert.equal(redirect.status, 303);
  assert.equal(redirect.headers.get('x-taskcluster-artifact-storage-type'), 'object');
  const followed = await fetch(redirect.headers.get('location')!);
  assert.ok(Buffer.from(await followed.arrayBuffer()).equals(bytes));

  const content = await q.queue.artifact(run.taskId, run.runId, 'public/build/app.bin');
  assertSchema('artifact-content-response', content);
  assert.equal(content.storageType, 'object');
});

test('object artifact: a hash mismatch is refused and the artifact stays unreadable', async () => {
  const run = await runningRun();
  const created = await run.worker.createArtifact(run.taskId, run.runId, 'public/bad.bin',
    { storageType: 'object', contentType: 'application/octet-stream', expires: fromNow('1 day') });
  const object = new taskcluster.Object({ rootUrl: q.deployment.rootUrl, credentials: created.credentials, retries: 0 });
  const bytes = Buffer.from('actual bytes');
  const upload = await object.createUpload(created.name, {
    projectId: created.projectId, uploadId: created.uploadId, expires: created.expires,
    proposedUploadMethods: { putUrl: { contentType: 'application/octet-stream', contentLength: bytes.length } },
  });
  await fetch(upload.uploadMethod.putUrl.url, { method: 'PUT', body: bytes, headers: upload.uploadMethod.putUrl.headers });
  const wrong = crypto.createHash('sha256').update('other bytes').digest('hex');
  const finish = await outcome(object.finishUpload(created.name, { projectId: created.projectId, uploadId: created.uploadId, hashes: { sha256: wrong } }));
  assert.equal(finish.statusCode, 400);
  assert.equal((await outcome(run.worker.finishArtifact(run.taskId, run.runId, 'public/bad.bin', { uploadId: created.uploadId }))).statusCode, 400);
  assert.equal((await outcome(q.queue.getArtifact(run.taskId, run.runId, 'public/bad.bin'))).statusCode, 404);
});

test('s3 artifact: PUT with the declared Content-Type, then downloadArtifact(); a wrong Content-Type is refused', async () => {
  const run = await runningRun();
  const put = await putS3(run, 'public/logs/build.txt', Buffer.from('build output\n'), 'text/plain; charset=utf-8');
  assert.equal(put.status, 200);
  const got = await download(run.taskId, 'public/logs/build.txt');
  assert.equal(got.data.toString(), 'build output\n');
  assert.equal(got.contentType, 'text/plain; charset=utf-8');

  const wrong = await putS3(run, 'public/logs/other.txt', Buffer.from('x'), 'text/plain', { 'content-type': 'application/json' });
  assert.equal(wrong.status, 403);

  const content = await q.queue.latestArtifact(run.taskId, 'public/logs/build.txt');
  assertSchema('artifact-content-response', content);
  assert.equal(content.storageType, 's3');
});

test('s3 artifact with Content-Encoding gzip: stored compressed, served with the encoding, decoded by clients', async () => {
  const run = await runningRun();
  const text = 'line of log output\n'.repeat(2000);
  const gzipped = zlib.gzipSync(text);
  const put = await putS3(run, 'public/logs/live_backing.log', gzipped, 'text/plain; charset=utf-8', { 'content-encoding': 'gzip' });
  assert.equal(put.status, 200);

  const got = await download(run.taskId, 'public/logs/live_backing.log');
  assert.equal(got.data.toString(), text, 'downloadArtifact() yields the decoded text');

  const location = (await fetch(artifactUrl(q.queue, run.taskId, run.runId, 'public/logs/live_backing.log'), { redirect: 'manual' })).headers.get('location')!;
  const raw = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
    http.get(location, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
  assert.equal(raw.encoding, 'gzip');
  assert.ok(raw.body.equals(gzipped), 'the bytes are served as uploaded');
  assert.equal(await (await fetch(location)).text(), text, 'a browser-like client decodes it');
});

test('reference artifacts redirect to their url; error artifacts answer 424 with reason and message', async () => {
  const run = await runningRun();
  await run.worker.createArtifact(run.taskId, run.runId, 'public/ref', {
    storageType: 'reference', url: 'https://example.com/somewhere', contentType: 'text/html', expires: fromNow('1 day'),
  });
  const ref = await fetch(artifactUrl(q.queue, run.taskId, run.runId, 'public/ref'), { redirect: 'manual' });
  assert.equal(ref.status, 303);
  assert.equal(ref.headers.get('location'), 'https://example.com/somewhere');

  const created = await run.worker.createArtifact(run.taskId, run.runId, 'public/missing.txt', {
    storageType: 'error', reason: 'file-missing-on-worker', message: 'no such file /out/missing.txt', expires: fromNow('1 day'),
  });
  assert.deepEqual(created, { storageType: 'error' });
  const res = await fetch(artifactUrl(q.queue, run.taskId, run.runId, 'public/missing.txt'), { redirect: 'manual' });
  assert.equal(res.status, 424);
  assert.deepEqual(await res.json(), { reason: 'file-missing-on-worker', message: 'no such file /out/missing.txt' });
  await assert.rejects(download(run.taskId, 'public/missing.txt'),
    (err: any) => err.reason === 'file-missing-on-worker' && /no such file/.test(err.message));
});

test('link artifacts resolve through chains; cycles are refused; every name on the way needs scopes', async () => {
  const run = await runningRun();
  assert.equal((await putS3(run, 'private/target.txt', Buffer.from('linked data'), 'text/plain')).status, 200);
  const link = (name: string, artifact: string) =>
    run.worker.createArtifact(run.taskId, run.runId, name, { storageType: 'link', artifact, expires: fromNow('1 day') });
  await link('public/link-b', 'private/target.txt');
  await link('public/link-a', 'public/link-b');
  assert.equal((await download(run.taskId, 'public/link-a')).data.toString(), 'linked data');

  await link('public/cycle-1', 'public/cycle-2');
  await link('public/cycle-2', 'public/cycle-1');
  assert.equal((await outcome(q.queue.getArtifact(run.taskId, run.runId, 'public/cycle-1'))).statusCode, 400);

  // Anonymous may read public/* but not the private target the link leads to.
  const anonymous = await fetch(artifactUrl(q.queue, run.taskId, run.runId, 'public/link-a'), { redirect: 'manual' });
  assert.equal(anonymous.status, 403);
});

test('public artifacts are readable anonymously; private ones are 403 without credentials and 303 signed', async () => {
  const run = await runningRun();
  await putS3(run, 'public/readme.txt', Buffer.from('for everyone'), 'text/plain');
  await putS3(run, 'private/secret.txt', Buffer.from('for some'), 'text/plain');

  const publicRes = await fetch(artifactUrl(q.queue, run.taskId, run.runId, 'public/readme.txt'));
  assert.equal(publicRes.status, 200);
  assert.equal(await publicRes.text(), 'for everyone');

  const privateUrl = artifactUrl(q.queue, run.taskId, run.runId, 'private/secret.txt');
  assert.equal((await fetch(privateUrl, { redirect: 'manual' })).status, 403);
  const signed = q.queue.buildSignedUrl(q.queue.getArtifact, run.taskId, run.runId, 'private/secret.txt');
  const signedRes = await fetch(signed, { redirect: 'manual' });
  assert.equal(signedRes.status, 303);
  assert.equal(await (await fetch(signed)).text(), 'for some');
});

test('createArtifact: identical repeats are accepted, conflicting ones are 409, expiry beyond the task is 400', async () => {
  const run = await runningRun({ expires: fromNow('2 days') });
  const request = { storageType: 'error', reason: 'file-missing-on-worker', message: 'gone', expires: fromNow('1 day') };
  await run.worker.createArtifact(run.taskId, run.runId, 'public/e', request);
  await run.worker.createArtifact(run.taskId, run.runId, 'public/e', request);
  const changed = await outcome(run.worker.createArtifact(run.taskId, run.runId, 'public/e', { ...request, message: 'other' }));
  assert.equal(changed.statusCode, 409);
  const otherType = await outcome(run.worker.createArtifact(run.taskId, run.runId, 'public/e',
    { storageType: 's3', contentType: 'text/plain', expires: request.expires }));
  assert.equal(otherType.statusCode, 409);

  const tooLate = await outcome(run.worker.createArtifact(run.taskId, run.runId, 'public/late',
    { storageType: 's3', contentType: 'text/plain', expires: fromNow('3 days') }));
  assert.equal(tooLate.statusCode, 400);
  assert.match(tooLate.message, /after the task expiration/);

  const otherRun = await outcome(run.worker.createArtifact(run.taskId, run.runId + 1, 'public/x', request));
  assert.equal(otherRun.statusCode, 403, 'claim credentials only cover their own run');
});

test('createArtifact after the run is resolved completed is 409', async () => {
  const run = await runningRun();
  await run.worker.reportCompleted(run.taskId, run.runId);
  const res = await outcome(run.worker.createArtifact(run.taskId, run.runId, 'public/too-late.txt',
    { storageType: 's3', contentType: 'text/plain', expires: fromNow('1 day') }));
  // The claim credentials still authenticate until takenUntil; the queue refuses the resolved run.
  assert.equal(res.statusCode, 409);
});

test('listArtifacts and listLatestArtifacts page; artifactInfo describes one artifact', async () => {
  const run = await runningRun();
  const names = ['public/a', 'public/b', 'public/c', 'public/d', 'public/e'];
  for (const name of names) {
    await run.worker.createArtifact(run.taskId, run.runId, name,
      { storageType: 'reference', url: `https://example.com/${name}`, contentType: 'text/plain', expires: fromNow('1 day') });
  }
  const seen: string[] = [];
  let query: Record<string, unknown> = { limit: 2 };
  for (;;) {
    const page = await q.queue.listArtifacts(run.taskId, run.runId, query);
    assertSchema('list-artifacts-response', page);
    seen.push(...page.artifacts.map((a: any) => a.name));
    if (!page.continuationToken) break;
    query = { limit: 2, continuationToken: page.continuationToken };
  }
  assert.deepEqual(seen, names);
  const latest = await q.queue.listLatestArtifacts(run.taskId);
  assert.deepEqual(latest.artifacts.map((a: any) => a.name), names);
  assert.equal((await outcome(q.queue.listArtifacts(run.taskId, run.runId + 1))).statusCode, 404);

  const info = await q.queue.artifactInfo(run.taskId, run.runId, 'public/c');
  assertSchema('artifact-response', info);
  assert.deepEqual(info, { storageType: 'reference', name: 'public/c', expires: info.expires, contentType: 'text/plain' });
  assert.deepEqual(await q.queue.latestArtifactInfo(run.taskId, 'public/c'), info);
  assert.equal((await outcome(q.queue.artifactInfo(run.taskId, run.runId, 'public/none'))).statusCode, 404);
});

test('an expired artifact is no longer served and its data is deleted from disk', async () => {
  const run = await runningRun();
  const created = await run.worker.createArtifact(run.taskId, run.runId, 'public/short.txt',
    { storageType: 's3', contentType: 'text/plain', expires: new Date(Date.now() + 1000).toJSON() });
  await fetch(created.putUrl, { method: 'PUT', body: 'short-lived', headers: { 'content-type': 'text/plain' } });
  const location = (await fetch(artifactUrl(q.queue, run.taskId, run.runId, 'public/short.txt'), { redirect: 'manual' })).headers.get('location')!;
  assert.equal(await (await fetch(location)).text(), 'short-lived');
  await new Promise((r) => setTimeout(r, 1600));
  const status = (await outcome(q.queue.getArtifact(run.taskId, run.runId, 'public/short.txt'))).statusCode;
  assert.ok(status === 404 || status === 410, `expired artifact answered ${status}`);
  assert.equal((await fetch(location)).status, 404, 'the data is gone');
});

test('a 50 MB object artifact streams to disk as it arrives and downloads intact', async () => {
  const run = await runningRun();
  const size = 50 * 1024 * 1024;
  const half = size / 2;
  const chunk = crypto.randomBytes(64 * 1024);
  let release = () => {};
  const gate = new Promise<void>((resolve) => { release = resolve; });
  // Sends half the bytes, then waits: the first half must already be on disk by then.
  const generate = () => Readable.from((async function* () {
    for (let sent = 0; sent < size; sent += chunk.length) {
      if (sent === half) await gate;
      yield chunk;
    }
  })());
  const created = await run.worker.createArtifact(run.taskId, run.runId, 'public/big.bin',
    { storageType: 'object', contentType: 'application/octet-stream', expires: fromNow('1 day') });
  const object = new taskcluster.Object({ rootUrl: q.deployment.rootUrl, credentials: created.credentials, retries: 0 });
  const uploading = taskcluster.upload({
    projectId: created.projectId, name: created.name, contentType: 'application/octet-stream', contentLength: size,
    expires: new Date(created.expires), object, uploadId: created.uploadId, streamFactory: async () => generate(), retries: 0,
  });
  try {
    const tmp = path.join(q.stateDir, 'objects', 'tmp');
    const onDisk = await eventually(async () => {
      const largest = Math.max(0, ...readdirSync(tmp).map((f) => statSync(path.join(tmp, f)).size));
      return largest >= half * 0.9 ? largest : undefined;
    }, 30_000, 'the first half of the upload to be written to disk');
    assert.ok(onDisk <= half, 'no more than what was sent is on disk');
  } finally {
    release();
  }
  await uploading;
  await run.worker.finishArtifact(run.taskId, run.runId, 'public/big.bin', { uploadId: created.uploadId });

  let received = 0;
  const hash = crypto.createHash('sha256');
  await taskcluster.downloadArtifact({
    taskId: run.taskId, name: 'public/big.bin', queue: q.queue, retries: 0,
    streamFactory: async () => new Writable({ write(c: Buffer, _e, cb) { received += c.length; hash.update(c); cb(); } }),
  });
  assert.equal(received, size);
  const expected = crypto.createHash('sha256');
  for (let sent = 0; sent < size; sent += chunk.length) expected.update(chunk);
  assert.equal(hash.digest('hex'), expected.digest('hex'));
});

test('getLatestArtifact: 303 to the latest run\'s data, 424 for an error artifact, 403 for private without credentials', async () => {
  const run = await runningRun({ retries: 1 });
  await putS3(run, 'public/out.txt', Buffer.from('latest output'), 'text/plain');
  await putS3(run, 'private/key.txt', Buffer.from('private output'), 'text/plain');
  await run.worker.createArtifact(run.taskId, run.runId, 'public/gone.txt', {
    storageType: 'error', reason: 'file-missing-on-worker', message: 'no such file /out/gone.txt', expires: fromNow('1 day'),
  });
  const latestUrl = (name: string) => q.queue.buildUrl(q.queue.getLatestArtifact, run.taskId, name);

  const redirect = await fetch(latestUrl('public/out.txt'), { redirect: 'manual' });
  assert.equal(redirect.status, 303);
  assert.equal(redirect.headers.get('x-taskcluster-artifact-storage-type'), 's3');
  assert.equal(await (await fetch(redirect.headers.get('location')!)).text(), 'latest output');

  const error = await fetch(latestUrl('public/gone.txt'), { redirect: 'manual' });
  assert.equal(error.status, 424);
  assert.deepEqual(await error.json(), { reason: 'file-missing-on-worker', message: 'no such file /out/gone.txt' });

  const anonymous = await fetch(latestUrl('private/key.txt'), { redirect: 'manual' });
  assert.equal(anonymous.status, 403);
  assert.equal((await anonymous.json()).code, 'InsufficientScopes');
  const signed = await fetch(q.queue.buildSignedUrl(q.queue.getLatestArtifact, run.taskId, 'private/key.txt'), { redirect: 'manual' });
  assert.equal(signed.status, 303);
  assert.equal(await (await fetch(signed.headers.get('location')!)).text(), 'private output');

  // "Latest" is the newest run: once a retry run exists, run 0's artifacts are not its artifacts.
  await run.worker.reportException(run.taskId, run.runId, { reason: 'worker-shutdown' });
  assert.equal((await fetch(latestUrl('public/out.txt'), { redirect: 'manual' })).status, 404);
  assert.equal((await fetch(artifactUrl(q.queue, run.taskId, 0, 'public/out.txt'), { redirect: 'manual' })).status, 303);
});
