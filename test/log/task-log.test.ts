import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TaskLog } from '../../lib/log/task-log.ts';

test('worker lines and container output land in the backing file, in order', async () => {
  const log = await TaskLog.create();
  try {
    log.info('=== Task Starting ===');
    await pipeline(Readable.from(['hello ', 'from ', 'the container\n']), log, { end: false });
    log.error('Task timeout after 5 seconds. Force killing container.');
    log.warn('careful');
    await log.close();
    const text = await readFile(log.path, 'utf8');
    assert.match(text, /^\[taskcluster \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z\] === Task Starting ===\nhello from the container\n\n\[taskcluster:error\] Task timeout after 5 seconds\. Force killing container\.\n\n\[taskcluster:warn\] careful\n$/);
    assert.equal(log.bytesOnDisk, Buffer.byteLength(text));
    assert.ok(log.complete);
  } finally {
    await log.release();
  }
});

test('secrets are masked in the file, even when split across writes or added late', async () => {
  const log = await TaskLog.create({ secrets: ['hunter2'] });
  try {
    log.write('token=hun');
    log.write('ter2\n');
    log.addSecrets(['late-secret']);
    log.write('late-sec');
    log.write('ret and hunter2');
    await log.close();
    assert.equal(await readFile(log.path, 'utf8'), 'token=[*****]\n[*****] and [*****]');
  } finally {
    await log.release();
  }
});

test('a secret printed character by character, with pauses that flush the log between, never reaches the file', async () => {
  const secret = 'Zq9-typed-slowly';
  const log = await TaskLog.create({ secrets: [secret] });
  try {
    for (const ch of `password: ${secret}\n`) {
      await new Promise<void>((resolve, reject) => log.write(ch, (err) => (err ? reject(err) : resolve())));
      // Longer than the log's flush delay: whatever the log would release is on disk now.
      await new Promise((resolve) => setTimeout(resolve, 15));
      const onDisk = await readFile(log.path, 'utf8');
      assert.ok(!onDisk.includes('Zq'), `part of the secret reached the file: ${JSON.stringify(onDisk)}`);
    }
    // The last bytes stay held back (they could still start a secret) until more output or the end.
    await log.close();
    assert.equal(await readFile(log.path, 'utf8'), 'password: [*****]\n');
  } finally {
    await log.release();
  }
});

test('a secret in base64 and a secret too short to mask, in the file', async () => {
  const log = await TaskLog.create({ secrets: ['s3cr3t-token', 'abc12'] });
  try {
    log.write(`auth ${Buffer.from('user:s3cr3t-token').toString('base64')}\nid abc12\n`);
    await log.close();
    const text = await readFile(log.path, 'utf8');
    assert.match(text, /^auth dXNlcjp\[\*{5}\][A-Za-z0-9+/]{0,2}=*\nid abc12\n$/);
  } finally {
    await log.release();
  }
});

test('writing after the end is ignored, not a crash', async () => {
  const log = await TaskLog.create();
  await log.close();
  log.info('too late');
  log.error('too late');
  await log.close();
  assert.equal(await readFile(log.path, 'utf8'), '');
  await log.release();
});

test('the backing file is removed when the last reference is released', async () => {
  const log = await TaskLog.create();
  log.retain();
  log.info('x');
  await log.close();
  await log.release();
  assert.ok((await stat(log.path)).size > 0, 'still there while referenced');
  await log.release();
  await assert.rejects(stat(log.path), { code: 'ENOENT' });
  assert.throws(() => log.retain(), /already been removed/);
});

test('a large output is written completely without holding it in memory', async () => {
  const log = await TaskLog.create();
  try {
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const total = 64 * 1024 * 1024;
    async function* source() { for (let n = 0; n < total; n += chunk.length) yield chunk; }
    const before = process.memoryUsage();
    await pipeline(source(), log);
    const after = process.memoryUsage();
    assert.equal((await stat(log.path)).size, total);
    assert.equal(log.bytesOnDisk, total);
    // The whole output would add 64 MiB of buffers; streaming keeps it to a few.
    assert.ok(after.arrayBuffers - before.arrayBuffers < 16 * 1024 * 1024, `arrayBuffers grew by ${after.arrayBuffers - before.arrayBuffers}`);
  } finally {
    await log.release();
  }
});

test('output in many small pieces is written in few file writes, and a lone line still shows up at once', async () => {
  const log = await TaskLog.create();
  try {
    let grows = 0;
    log.on('grow', () => grows++);
    const piece = 'x'.repeat(100) + '\n';
    await pipeline(Readable.from(Array.from({ length: 5000 }, () => piece)), log, { end: false });
    await log.changed();
    while (log.bytesOnDisk < 5000 * piece.length) await log.changed();
    assert.ok(grows <= 20, `${grows} file writes for 5000 pieces`);

    const before = log.bytesOnDisk;
    log.info('one more line');
    await log.changed(); // no further writes or close needed: it is flushed after a short delay
    assert.ok(log.bytesOnDisk > before);
    assert.match((await readFile(log.path, 'utf8')).slice(before), /one more line\n$/);
  } finally {
    await log.close();
    await log.release();
  }
});

test('pieces of every size, some larger than a write, reach the file byte for byte and in order', async () => {
  const log = await TaskLog.create();
  try {
    // Distinct bytes everywhere: a buffer reused while its write is still under way, or
    // pieces written out of order, would show as a mismatch.
    const sizes = [1, 7, 16 * 1024, 300 * 1024, 5, 256 * 1024, 256 * 1024 - 1, 1024 * 1024 + 3, 12, 64 * 1024];
    const pieces = sizes.map((size, i) => randomBytes(size).fill(i, 0, 1));
    async function* source() { for (const p of pieces) yield p; }
    await pipeline(source(), log);
    assert.ok(Buffer.concat(pieces).equals(await readFile(log.path)));
    assert.equal(log.bytesOnDisk, sizes.reduce((a, b) => a + b, 0));
  } finally {
    await log.release();
  }
});

test('container output taken from a reused buffer: secrets masked across every 256 KiB buffer boundary, byte for byte otherwise', async () => {
  const secret = 'Kp2-boundary-secret';
  const log = await TaskLog.create({ secrets: [secret] });
  try {
    // The secret sits across each of the first three buffers' ends, at several offsets.
    const parts: string[] = [];
    let expected = '';
    let length = 0;
    for (const [i, shift] of [3, 10, 18].entries()) {
      const filler = 'f'.repeat((i + 1) * 256 * 1024 - length - shift);
      parts.push(filler, secret);
      expected += `${filler}[*****]`;
      length += filler.length + secret.length;
    }
    parts.push(` and ${secret} again\n`);
    expected += ' and [*****] again\n';
    const all = Buffer.from(parts.join(''));
    // Handed over in pieces of 6,000 bytes from one reused buffer, as the attach does.
    const reused = Buffer.alloc(6000);
    for (let at = 0; at < all.length; at += reused.length) {
      const n = all.copy(reused, 0, at, at + reused.length);
      if (!log.take(reused.subarray(0, n))) await log.room();
      reused.fill('#');
    }
    await log.close();
    assert.equal(await readFile(log.path, 'utf8'), expected);
  } finally {
    await log.release();
  }
});
