import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { TaskLog } from '../../lib/log/task-log.ts';
import { LiveLogServer } from '../../lib/log/live-log-server.ts';

const server = await LiveLogServer.start({ port: 0, graceSeconds: 0.3 });
after(() => server.close());

interface Reader { res: http.IncomingMessage; body: Promise<Buffer>; chunks: Buffer[] }

function get(url: string, headers: Record<string, string> = {}): Promise<Reader> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const body = new Promise<Buffer>((ok, fail) => { res.on('end', () => ok(Buffer.concat(chunks))); res.on('error', fail); });
      resolve({ res, body, chunks });
    }).on('error', reject);
  });
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) { if (cond()) return; await sleep(10); }
  assert.fail(`timed out waiting for ${what}`);
}

test('a reader gets what was written so far, then follows new output until the log ends', async () => {
  const log = await TaskLog.create();
  const url = server.publish(log);
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/log\/[A-Za-z0-9_-]{20,}$/);
  assert.equal(server.urlFor(log), url);
  log.write('first line\n');
  await waitFor(() => log.bytesOnDisk > 0, 'first write');
  const reader = await get(url);
  assert.equal(reader.res.statusCode, 200);
  assert.equal(reader.res.headers['transfer-encoding'], 'chunked');
  assert.match(String(reader.res.headers['content-type']), /^text\/plain/);
  await waitFor(() => Buffer.concat(reader.chunks).toString() === 'first line\n', 'the existing bytes');
  log.write('second line\n');
  await waitFor(() => Buffer.concat(reader.chunks).toString() === 'first line\nsecond line\n', 'the followed bytes');
  log.info('done');
  await log.close();
  const body = (await reader.body).toString();
  assert.match(body, /^first line\nsecond line\n\[taskcluster .*\] done\n$/);
  await log.release();
});

test('many readers at once each get the whole log', async () => {
  const log = await TaskLog.create();
  const url = server.publish(log);
  const readers = await Promise.all(Array.from({ length: 25 }, () => get(url)));
  let expected = '';
  for (let i = 0; i < 200; i++) { const line = `line ${i} ${'x'.repeat(i * 10)}\n`; log.write(line); expected += line; }
  await log.close();
  const bodies = await Promise.all(readers.map((r) => r.body));
  for (const b of bodies) assert.equal(b.toString(), expected);
  await log.release();
});

test('Range: bytes=N- starts at byte N, live and after the end', async () => {
  const log = await TaskLog.create();
  const url = server.publish(log);
  log.write('0123456789');
  await waitFor(() => log.bytesOnDisk === 10, 'write');
  const live = await get(url, { Range: 'bytes=4-' });
  assert.equal(live.res.statusCode, 206);
  assert.equal(live.res.headers['content-range'], 'bytes 4-*/*');
  log.write('abc');
  await log.close();
  assert.equal((await live.body).toString(), '456789abc');

  const done = await get(url, { Range: 'bytes=4-' });
  assert.equal(done.res.statusCode, 206);
  assert.equal(done.res.headers['content-range'], 'bytes 4-12/13');
  assert.equal(done.res.headers['content-length'], '9');
  assert.equal((await done.body).toString(), '456789abc');

  const beyond = await get(url, { Range: 'bytes=50-' });
  assert.equal(beyond.res.statusCode, 416);
  await beyond.body;
  await log.release();
});

test('an unknown token is a 404', async () => {
  const r = await get(new URL('/log/no-such-token', server.publish(await TaskLog.create())).href);
  assert.equal(r.res.statusCode, 404);
  await r.body;
});

test('an ended log stays readable for the grace period, then 404s and its file goes away', async () => {
  const log = await TaskLog.create();
  const url = server.publish(log);
  log.write('complete log\n');
  await log.close();
  await log.release(); // the task is done with it; the server still holds it
  const during = await get(url);
  assert.equal(during.res.statusCode, 200);
  assert.equal(during.res.headers['content-length'], '13');
  assert.equal((await during.body).toString(), 'complete log\n');
  await sleep(600);
  const later = await get(url);
  assert.equal(later.res.statusCode, 404);
  await later.body;
  assert.equal(server.urlFor(log), undefined);
  assert.throws(() => log.retain(), /already been removed/);
});

test('a reader that stops reading neither blocks the task nor grows memory', async () => {
  const patient = await LiveLogServer.start({ port: 0, graceSeconds: 60 });
  after(() => patient.close());
  const log = await TaskLog.create();
  const url = patient.publish(log);
  const stalled = await get(url);
  stalled.res.pause();
  const chunk = Buffer.alloc(256 * 1024, 'z');
  const total = 128 * 1024 * 1024;
  const before = process.memoryUsage().arrayBuffers;
  let peak = 0;
  for (let written = 0; written < total; written += chunk.length) {
    if (!log.write(chunk)) await new Promise((r) => log.once('drain', r));
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
  }
  await log.close(); // the task finishes its log while the reader sleeps
  assert.equal(log.bytesOnDisk, total);
  assert.ok(peak < 32 * 1024 * 1024, `buffers grew by ${peak} bytes while a reader stalled`);
  // When it wakes up, the reader still gets every byte.
  let received = 0;
  stalled.res.removeAllListeners('data');
  stalled.res.on('data', (c: Buffer) => { received += c.length; });
  stalled.res.resume();
  await new Promise((r) => stalled.res.on('end', r));
  assert.equal(received, total);
  await log.release();
});

test('ended logs are served by count as well as time: past maxEndedLogs the oldest answers 404 and its file goes', async () => {
  const bounded = await LiveLogServer.start({ port: 0, graceSeconds: 3600, maxEndedLogs: 2 });
  try {
    const logs = await Promise.all([1, 2, 3].map(() => TaskLog.create()));
    const urls = logs.map((l) => bounded.publish(l));
    for (const [i, l] of logs.entries()) {
      l.write(`log ${i}\n`);
      await l.close();
      await l.release(); // the run is done with it; only the server holds it now
    }
    const { existsSync } = await import('node:fs');
    await waitFor(() => !existsSync(logs[0]!.path), 'the oldest ended log\'s file to be removed');
    assert.equal((await get(urls[0]!)).res.statusCode, 404);
    for (const i of [1, 2]) {
      const reader = await get(urls[i]!);
      assert.equal(reader.res.statusCode, 200);
      assert.equal((await reader.body).toString(), `log ${i}\n`);
      assert.ok(existsSync(logs[i]!.path));
    }
  } finally {
    await bounded.close();
  }
});

test('a complete log holds no open file of its own (readers open the file by its path)', async () => {
  const { readdirSync, readlinkSync } = await import('node:fs');
  const openOn = (file: string) => readdirSync('/proc/self/fd').filter((fd) => {
    try { return readlinkSync(`/proc/self/fd/${fd}`) === file; } catch { return false; }
  }).length;
  const log = await TaskLog.create();
  log.write('some output\n');
  await waitFor(() => log.bytesOnDisk > 0, 'the write');
  assert.equal(openOn(log.path), 1, 'the write handle while the log is open');
  await log.close();
  await waitFor(() => openOn(log.path) === 0, 'the write handle to close once the log is complete');
  assert.equal(log.bytesOnDisk, 12);
  await log.release();
});
