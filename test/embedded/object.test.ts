// The embedded object service, driven through taskcluster-client over real HTTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync, readdirSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import taskcluster from 'taskcluster-client';
import { startCheckedEmbedded, schemaErrors, type CheckedDeployment } from './schema-check.ts';
import { silentLog } from '../../lib/log/worker-log.ts';

let deployment: CheckedDeployment;
let stateDir: string;
let object: any;

before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'object-test-'));
  deployment = await startCheckedEmbedded({ stateDir, port: 0, log: silentLog, sweepIntervalSeconds: 0.2 });
  object = new taskcluster.Object({ rootUrl: deployment.rootUrl, credentials: deployment.credentials, retries: 0 });
});

after(async () => {
  await deployment.close();
  rmSync(stateDir, { recursive: true, force: true });
});

const inAnHour = () => taskcluster.fromNow('1 hour');
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

function collector(): { stream: Writable; data: () => Buffer } {
  const chunks: Buffer[] = [];
  const stream = new Writable({ write(chunk: Buffer, _e, cb) { chunks.push(chunk); cb(); } });
  return { stream, data: () => Buffer.concat(chunks) };
}

async function uploadBytes(name: string, bytes: Buffer, contentType = 'application/octet-stream', expires = inAnHour()): Promise<void> {
  await taskcluster.upload({
    projectId: 'proj', name, contentType, contentLength: bytes.length, expires, object,
    streamFactory: async () => Readable.from([bytes]), retries: 0,
  });
}

async function downloadBytes(name: string): Promise<{ data: Buffer; contentType: string }> {
  const sink = collector();
  const contentType = await taskcluster.download({ name, object, streamFactory: async () => sink.stream, retries: 0 });
  return { data: sink.data(), contentType };
}

async function statusOf(promise: Promise<unknown>): Promise<number> {
  try { await promise; return 200; } catch (err) { return (err as { statusCode: number }).statusCode; }
}

test('upload() and download() round-trip a small object (dataInline) and a large one (putUrl)', async () => {
  const small = Buffer.from('hello, object service\n');
  const large = crypto.randomBytes(300 * 1024);
  await uploadBytes('test/small.txt', small, 'text/plain');
  await uploadBytes('test/large.bin', large);

  const gotSmall = await downloadBytes('test/small.txt');
  assert.equal(gotSmall.data.toString(), small.toString());
  assert.equal(gotSmall.contentType, 'text/plain');
  const gotLarge = await downloadBytes('test/large.bin');
  assert.ok(gotLarge.data.equals(large));

  const meta = await object.object('test/large.bin');
  assert.deepEqual(schemaErrors('/schemas/object/v1/get-object-response.json#', meta), []);
  assert.equal(meta.projectId, 'proj');
  assert.equal(meta.hashes.sha256, sha256(large));
});

test('startDownload offers getUrl with hashes, and simple; download redirects to the data', async () => {
  const bytes = Buffer.from('download me');
  await uploadBytes('test/dl.txt', bytes, 'text/plain');
  const viaGetUrl = await object.startDownload('test/dl.txt', { acceptDownloadMethods: { getUrl: true } });
  assert.deepEqual(schemaErrors('/schemas/object/v1/download-object-response.json#', viaGetUrl), []);
  assert.equal(viaGetUrl.method, 'getUrl');
  assert.equal(viaGetUrl.hashes.sha256, sha256(bytes));
  assert.equal(await (await fetch(viaGetUrl.url)).text(), 'download me');

  const viaSimple = await object.startDownload('test/dl.txt', { acceptDownloadMethods: { simple: true } });
  assert.equal(viaSimple.method, 'simple');
  assert.equal(await (await fetch(viaSimple.url)).text(), 'download me');

  assert.equal(await statusOf(object.startDownload('test/dl.txt', { acceptDownloadMethods: {} })), 406);

  const signed = object.buildSignedUrl(object.download, 'test/dl.txt');
  const redirect = await fetch(signed, { redirect: 'manual' });
  assert.equal(redirect.status, 303);
  assert.equal(await (await fetch(signed)).text(), 'download me');
  const anonymous = await fetch(object.buildUrl(object.download, 'test/dl.txt'), { redirect: 'manual' });
  assert.equal(anonymous.status, 403);
});

test('a putUrl upload must send exactly the signed Content-Type and Content-Length', async () => {
  const uploadId = taskcluster.slugid();
  const bytes = Buffer.from('0123456789');
  const res = await object.createUpload('test/strict.bin', {
    projectId: 'proj', uploadId, expires: inAnHour(),
    proposedUploadMethods: { putUrl: { contentType: 'application/x-test', contentLength: bytes.length } },
  });
  assert.deepEqual(schemaErrors('/schemas/object/v1/create-upload-response.json#', res), []);
  const { url, headers } = res.uploadMethod.putUrl;
  assert.equal(headers['Content-Type'], 'application/x-test');
  assert.equal(headers['Content-Length'], '10');

  const wrongType = await fetch(url, { method: 'PUT', body: bytes, headers: { 'content-type': 'text/plain' } });
  assert.equal(wrongType.status, 403);
  assert.match((await wrongType.json()).message, /Content-Type/);
  const wrongLength = await fetch(url, { method: 'PUT', body: Buffer.from('0123'), headers: { 'content-type': 'application/x-test' } });
  assert.equal(wrongLength.status, 403);
  const tampered = await fetch(url.replace('contentLength=10', 'contentLength=4'), {
    method: 'PUT', body: Buffer.from('0123'), headers: { 'content-type': 'application/x-test' },
  });
  assert.equal(tampered.status, 403);

  const ok = await fetch(url, { method: 'PUT', body: bytes, headers });
  assert.equal(ok.status, 200);
  await object.finishUpload('test/strict.bin', { projectId: 'proj', uploadId, hashes: { sha256: sha256(bytes) } });
  assert.equal((await downloadBytes('test/strict.bin')).data.toString(), '0123456789');

  // Finished objects are immutable: the old putUrl no longer replaces the data.
  const again = await fetch(url, { method: 'PUT', body: Buffer.from('9876543210'), headers });
  assert.equal(again.status, 409);
  assert.equal((await downloadBytes('test/strict.bin')).data.toString(), '0123456789');
});

test('a hash mismatch at finishUpload is rejected and the object stays unreadable', async () => {
  const uploadId = taskcluster.slugid();
  const bytes = Buffer.from('the real content');
  const res = await object.createUpload('test/mismatch.bin', {
    projectId: 'proj', uploadId, expires: inAnHour(),
    proposedUploadMethods: { putUrl: { contentType: 'application/octet-stream', contentLength: bytes.length } },
  });
  assert.equal(await statusOf(object.startDownload('test/mismatch.bin', { acceptDownloadMethods: { getUrl: true } })), 404,
    'unfinished objects are not readable');
  await fetch(res.uploadMethod.putUrl.url, { method: 'PUT', body: bytes, headers: res.uploadMethod.putUrl.headers });
  const wrong = sha256(Buffer.from('something else'));
  await assert.rejects(object.finishUpload('test/mismatch.bin', { projectId: 'proj', uploadId, hashes: { sha256: wrong } }),
    (err: any) => err.statusCode === 400 && /does not match its sha256 hash/.test(err.message));
  assert.equal(await statusOf(object.object('test/mismatch.bin')), 404);
  assert.equal(await statusOf(object.startDownload('test/mismatch.bin', { acceptDownloadMethods: { getUrl: true } })), 404);
});

test('a declared sha512 is checked against the data (computed only when declared) and offered to downloads', async () => {
  const sha512 = (b: Buffer) => crypto.createHash('sha512').update(b).digest('hex');
  const bytes = crypto.randomBytes(64 * 1024);
  const put = async (name: string) => {
    const uploadId = taskcluster.slugid();
    const res = await object.createUpload(name, {
      projectId: 'proj', uploadId, expires: inAnHour(),
      proposedUploadMethods: { putUrl: { contentType: 'application/octet-stream', contentLength: bytes.length } },
    });
    await fetch(res.uploadMethod.putUrl.url, { method: 'PUT', body: bytes, headers: res.uploadMethod.putUrl.headers });
    return uploadId;
  };
  const bad = await put('test/sha512-wrong.bin');
  await assert.rejects(object.finishUpload('test/sha512-wrong.bin', { projectId: 'proj', uploadId: bad, hashes: { sha512: sha512(Buffer.from('other')) } }),
    (err: any) => err.statusCode === 400 && /does not match its sha512 hash/.test(err.message));
  assert.equal(await statusOf(object.object('test/sha512-wrong.bin')), 404);

  const good = await put('test/sha512-right.bin');
  await object.finishUpload('test/sha512-right.bin', { projectId: 'proj', uploadId: good, hashes: { sha512: sha512(bytes) } });
  const offered = await object.startDownload('test/sha512-right.bin', { acceptDownloadMethods: { getUrl: true } });
  assert.deepEqual(offered.hashes, { sha256: sha256(bytes), sha512: sha512(bytes) });

  const only256 = await put('test/sha256-only.bin');
  await object.finishUpload('test/sha256-only.bin', { projectId: 'proj', uploadId: only256, hashes: { sha256: sha256(bytes) } });
  const meta = await object.object('test/sha256-only.bin');
  assert.deepEqual(meta.hashes, { sha256: sha256(bytes) });
  assert.ok((await downloadBytes('test/sha256-only.bin')).data.equals(bytes), 'the download helper accepts sha256 alone');
});

test('finishUpload without uploaded data, with a wrong uploadId, and a conflicting createUpload', async () => {
  const uploadId = taskcluster.slugid();
  const request = { projectId: 'proj', uploadId, expires: inAnHour(), proposedUploadMethods: {} };
  const locked = await object.createUpload('test/empty.bin', request);
  assert.deepEqual(locked.uploadMethod, {});
  await object.createUpload('test/empty.bin', request); // a repeat is accepted
  assert.equal(await statusOf(object.createUpload('test/empty.bin', { ...request, uploadId: taskcluster.slugid() })), 409);
  assert.equal(await statusOf(object.finishUpload('test/empty.bin', { projectId: 'proj', uploadId })), 400);
  assert.equal(await statusOf(object.finishUpload('test/empty.bin', { projectId: 'proj', uploadId: taskcluster.slugid() })), 409);
  assert.equal(await statusOf(object.finishUpload('test/none.bin', { projectId: 'proj', uploadId })), 404);
});

test('upload scopes are checked against projectId and name', async () => {
  const limited = new taskcluster.Object({
    rootUrl: deployment.rootUrl, retries: 0,
    credentials: taskcluster.createTemporaryCredentials({
      start: new Date(), expiry: inAnHour(), scopes: ['object:upload:proj:allowed/*'], credentials: deployment.credentials,
    }),
  });
  const request = (uploadId: string) => ({ projectId: 'proj', uploadId, expires: inAnHour(), proposedUploadMethods: {} });
  await limited.createUpload('allowed/x', request(taskcluster.slugid()));
  assert.equal(await statusOf(limited.createUpload('other/x', request(taskcluster.slugid()))), 403);
  assert.equal(await statusOf(limited.createUpload('allowed/y', { ...request(taskcluster.slugid()), projectId: 'other' })), 403);
});

test('expired objects are deleted by the sweep, data files included', async () => {
  const bytes = crypto.randomBytes(20 * 1024);
  await uploadBytes('test/short-lived.bin', bytes, 'application/octet-stream', new Date(Date.now() + 1500));
  const before = filesUnder(path.join(stateDir, 'objects'));
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(await statusOf(object.object('test/short-lived.bin')), 404);
  const afterSweep = filesUnder(path.join(stateDir, 'objects'));
  assert.equal(before.length - afterSweep.length, 1, 'the expired object\'s data file is gone');
});

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) out.push(...filesUnder(full));
    else out.push(full);
  }
  return out;
}
