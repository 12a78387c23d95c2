// Artifact uploads against the embedded deployment, through taskcluster-client over HTTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import path from 'node:path';
import os from 'node:os';
import { once } from 'node:events';
import { startDeployment, claimedRun, publisherFor, downloadArtifact, sha256, type Deployment } from './embedded-run.ts';
import { startFlakyProxy } from './flaky-proxy.ts';

let d: Deployment;
let dir: string;
before(async () => { d = await startDeployment(); dir = await mkdtemp(path.join(os.tmpdir(), 'upload-files-')); });
after(async () => { await d.close(); await rm(dir, { recursive: true, force: true }); });

async function fileWith(name: string, data: Buffer | string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, data);
  return file;
}

/** Status and Content-Encoding of the artifact's content, read without decoding it. */
async function rawContent(taskId: string, runId: number, name: string): Promise<{ status: number; encoding: string | null; body: Buffer }> {
  const url = d.queue.buildUrl(d.queue.getArtifact, taskId, runId, name);
  const res = await fetch(url, { redirect: 'manual' });
  if (res.status !== 303) return { status: res.status, encoding: null, body: Buffer.from(await res.arrayBuffer()) };
  // Node's fetch would decode gzip; read the stored bytes with a plain request instead.
  const { default: http } = await import('node:http');
  return new Promise((resolve, reject) => {
    http.get(res.headers.get('location')!, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => resolve({ status: r.statusCode!, encoding: (r.headers['content-encoding'] as string) ?? null, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

test('object upload of a small and a larger file reads back identical, with its content type', async () => {
  const run = await claimedRun(d);
  const publisher = publisherFor(d.rootUrl, run);
  const small = await fileWith('small.json', '{"ok":true}\n');
  const largeBytes = crypto.randomBytes(300 * 1024);
  const large = await fileWith('large.bin', largeBytes);

  const r1 = await publisher.uploadFile(small, { name: 'public/result.json', expires: run.expires });
  assert.deepEqual(r1, { name: 'public/result.json', storageType: 'object', contentType: 'application/json', contentEncoding: 'identity', size: 12, sha256: sha256('{"ok":true}\n') });
  const r2 = await publisher.uploadFile(large, { name: 'public/build/app.bin', expires: run.expires });
  assert.equal(r2.sha256, sha256(largeBytes));

  const got1 = await downloadArtifact(d.queue, run.taskId, 'public/result.json');
  assert.equal(got1.text, '{"ok":true}\n');
  assert.equal(got1.contentType, 'application/json');
  const got2 = await downloadArtifact(d.queue, run.taskId, 'public/build/app.bin');
  assert.equal(got2.sha256, sha256(largeBytes));
  const listed = await d.queue.listArtifacts(run.taskId, run.runId);
  assert.deepEqual(listed.artifacts.map((a: { name: string; storageType: string }) => [a.name, a.storageType]).sort(),
    [['public/build/app.bin', 'object'], ['public/result.json', 'object']]);
});

test('a 200 MB object upload streams from disk without holding the file in memory', async () => {
  const run = await claimedRun(d);
  const file = path.join(dir, 'big.bin');
  const hash = crypto.createHash('sha256');
  const out = createWriteStream(file);
  for (let i = 0; i < 200; i++) {
    const chunk = crypto.randomBytes(1024 * 1024);
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const expected = hash.digest('hex');

  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 10);
  try {
    const result = await publisherFor(d.rootUrl, run).uploadFile(file, { name: 'public/big.bin', expires: run.expires });
    assert.equal(result.size, 200 * 1024 * 1024);
    assert.equal(result.sha256, expected);
  } finally {
    clearInterval(sampler);
  }
  // Both ends (worker and embedded service) are in this process; holding the file would add 200 MB.
  assert.ok(peak - baseline < 64 * 1024 * 1024, `RSS grew by ${Math.round((peak - baseline) / 1e6)} MB during the upload`);
  const got = await downloadArtifact(d.queue, run.taskId, 'public/big.bin');
  assert.equal(got.size, 200 * 1024 * 1024);
  assert.equal(got.sha256, expected);
  await rm(file);
});

test('s3 mode: text is stored gzip-encoded and reads back as the original', async () => {
  const run = await claimedRun(d);
  const publisher = publisherFor(d.rootUrl, run, { storageType: 's3' });
  const text = 'line of build output\n'.repeat(5000);
  const result = await publisher.uploadFile(await fileWith('build.log', text), { name: 'public/logs/build.log', expires: run.expires });
  assert.equal(result.storageType, 's3');
  assert.equal(result.contentEncoding, 'gzip');
  assert.equal(result.sha256, sha256(text));

  const raw = await rawContent(run.taskId, run.runId, 'public/logs/build.log');
  assert.equal(raw.status, 200);
  assert.equal(raw.encoding, 'gzip');
  assert.ok(raw.body.length < text.length / 10, 'stored compressed');
  assert.equal(zlib.gunzipSync(raw.body).toString(), text);

  const got = await downloadArtifact(d.queue, run.taskId, 'public/logs/build.log');
  assert.equal(got.text, text);
  assert.equal(got.contentType, 'text/plain');
});

test('s3 mode: already-compressed files are stored as they are', async () => {
  const run = await claimedRun(d);
  const gz = zlib.gzipSync('compressed already\n');
  const result = await publisherFor(d.rootUrl, run, { storageType: 's3' })
    .uploadFile(await fileWith('out.tar.gz', gz), { name: 'public/out.tar.gz', expires: run.expires });
  assert.equal(result.contentEncoding, 'identity');
  const raw = await rawContent(run.taskId, run.runId, 'public/out.tar.gz');
  assert.equal(raw.encoding, null);
  assert.ok(raw.body.equals(gz));
});

for (const storageType of ['object', 's3'] as const) {
  test(`${storageType} mode: a PUT answered 503 is retried and the upload succeeds`, async () => {
    const proxy = await startFlakyProxy(d.rootUrl, 2, 503);
    try {
      const run = await claimedRun(d);
      const bytes = crypto.randomBytes(64 * 1024);
      const retried: number[] = [];
      const publisher = publisherFor(proxy.url, run, { storageType, retry: { retries: 4, baseDelayMs: 5, onRetry: (_e, n) => retried.push(n) } });
      await publisher.uploadFile(await fileWith(`retry-${storageType}.bin`, bytes), { name: 'public/retry.bin', expires: run.expires });
      assert.equal(proxy.failedPuts, 2);
      assert.equal(proxy.putAttempts, 3);
      const got = await downloadArtifact(d.queue, run.taskId, 'public/retry.bin');
      assert.equal(got.sha256, sha256(bytes));
    } finally {
      await proxy.close();
    }
  });

  test(`${storageType} mode: a PUT answered 403 is not retried`, async () => {
    const proxy = await startFlakyProxy(d.rootUrl, 1, 403);
    try {
      const run = await claimedRun(d);
      const publisher = publisherFor(proxy.url, run, { storageType, retry: { retries: 4, baseDelayMs: 5 } });
      await assert.rejects(publisher.uploadFile(await fileWith(`denied-${storageType}.bin`, crypto.randomBytes(64 * 1024)),
        { name: 'public/denied.bin', expires: run.expires }));
      assert.equal(proxy.putAttempts, 1);
    } finally {
      await proxy.close();
    }
  });
}

test('uploadData accepts strings and streams', async () => {
  const run = await claimedRun(d);
  const publisher = publisherFor(d.rootUrl, run);
  await publisher.uploadData('{"taskId":"x"}', { name: 'public/superseded-by.json', expires: run.expires });
  const { Readable } = await import('node:stream');
  await publisher.uploadData(Readable.from(['a', 'b', 'c']), { name: 'public/abc.txt', expires: run.expires });
  assert.equal((await downloadArtifact(d.queue, run.taskId, 'public/superseded-by.json')).text, '{"taskId":"x"}');
  assert.equal((await downloadArtifact(d.queue, run.taskId, 'public/abc.txt')).text, 'abc');
});

test('an error artifact answers 424 with its reason and message', async () => {
  const run = await claimedRun(d);
  await publisherFor(d.rootUrl, run).createErrorArtifact('public/missing.txt', 'file-missing-on-worker',
    'Artifact "public/missing.txt" not found at "/missing.txt"', run.expires);
  const res = await fetch(d.queue.buildUrl(d.queue.getArtifact, run.taskId, run.runId, 'public/missing.txt'), { redirect: 'manual' });
  assert.equal(res.status, 424);
  await assert.rejects(downloadArtifact(d.queue, run.taskId, 'public/missing.txt'),
    (err: Error & { reason?: string }) => err.reason === 'file-missing-on-worker' && /not found at "\/missing.txt"/.test(err.message));
});

test('credentials are asked for on every call, so reclaimed ones are used', async () => {
  const run = await claimedRun(d);
  let asked = 0;
  const publisher = publisherFor(d.rootUrl, run, { credentials: () => { asked++; return run.credentials; } });
  await publisher.uploadFile(await fileWith('c.txt', 'c'), { name: 'public/c.txt', expires: run.expires });
  await publisher.createLinkArtifact('public/c-link.txt', 'public/c.txt', run.expires);
  assert.ok(asked >= 3, `asked ${asked} times`);
  await assert.rejects(
    publisherFor(d.rootUrl, run, { credentials: () => ({ clientId: 'nobody', accessToken: 'wrong' }) })
      .createLinkArtifact('public/x', 'public/c.txt', run.expires),
    (err: { statusCode?: number }) => err.statusCode === 401);
});

function chunkedStream(bytes: Buffer, chunk = 256 * 1024) {
  return Readable.from((function* () { for (let i = 0; i < bytes.length; i += chunk) yield bytes.subarray(i, i + chunk); })());
}

test('uploadStream: a stream of known length uploads in one pass and leaves no temp file', async () => {
  const run = await claimedRun(d);
  const bytes = crypto.randomBytes(12 * 1024 * 1024);
  const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'upload-stream-tmp-'));
  try {
    const publisher = publisherFor(d.rootUrl, run, { tmpDir });
    const opened: number[] = [];
    const result = await publisher.uploadStream((n) => { opened.push(n); return chunkedStream(bytes); }, bytes.length, { name: 'public/stream.bin', expires: run.expires });
    assert.deepEqual(opened, [1]);
    assert.equal(result.sha256, sha256(bytes));
    assert.equal(result.size, bytes.length);
    assert.equal((await downloadArtifact(d.queue, run.taskId, 'public/stream.bin')).sha256, sha256(bytes));
    assert.deepEqual(await readdir(tmpDir), []);
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
});

test('uploadStream: a PUT that fails is retried with the source opened again', async () => {
  const proxy = await startFlakyProxy(d.rootUrl, 1, 503);
  try {
    const run = await claimedRun(d);
    const bytes = crypto.randomBytes(6 * 1024 * 1024);
    const publisher = publisherFor(proxy.url, run, { retry: { retries: 3, baseDelayMs: 5 } });
    const opened: number[] = [];
    const result = await publisher.uploadStream((n) => { opened.push(n); return chunkedStream(bytes); }, bytes.length, { name: 'public/stream-retry.bin', expires: run.expires });
    assert.equal(proxy.failedPuts, 1);
    assert.equal(proxy.putAttempts, 2);
    assert.deepEqual(opened, [1, 2]);
    assert.equal(result.sha256, sha256(bytes));
    assert.equal((await downloadArtifact(d.queue, run.taskId, 'public/stream-retry.bin')).sha256, sha256(bytes));
  } finally {
    await proxy.close();
  }
});

test('uploadStream: data shorter or longer than declared fails at once, not retried, and is never readable', async () => {
  const run = await claimedRun(d);
  const publisher = publisherFor(d.rootUrl, run, { retry: { retries: 3, baseDelayMs: 5 } });
  const bytes = crypto.randomBytes(256 * 1024);
  for (const [name, declared] of [['public/short.bin', bytes.length + 10], ['public/long.bin', bytes.length - 10]] as const) {
    let opened = 0;
    await assert.rejects(publisher.uploadStream(() => { opened++; return chunkedStream(bytes, 64 * 1024); }, declared, { name, expires: run.expires }),
      /than the \d+ bytes declared for it .*changed while it was read/);
    assert.equal(opened, 1, `${name}: not retried`);
    await assert.rejects(downloadArtifact(d.queue, run.taskId, name));
  }
});

test('a small artifact travels inside createUpload (dataInline): no storage PUT', async () => {
  const proxy = await startFlakyProxy(d.rootUrl, 0, 503);
  try {
    const run = await claimedRun(d);
    const publisher = publisherFor(proxy.url, run);
    const text = 'a small log\n'.repeat(100);
    const result = await publisher.uploadFile(await fileWith('small.log', text), { name: 'public/logs/small.log', expires: run.expires });
    assert.equal(proxy.putAttempts, 0);
    assert.equal(result.sha256, sha256(text));
    assert.equal((await downloadArtifact(d.queue, run.taskId, 'public/logs/small.log')).text, text);
    const big = crypto.randomBytes(8192);
    await publisher.uploadFile(await fileWith('edge.bin', big), { name: 'public/edge.bin', expires: run.expires });
    assert.equal(proxy.putAttempts, 1, '8 KiB and more go by PUT');
  } finally {
    await proxy.close();
  }
});
