// Download progress in the task log: bytes, total and rate, at most one line per interval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DownloadMeter } from '../../lib/images/download-progress.ts';
import { formatBytes } from '../../lib/log/format-bytes.ts';

test('bytes are shown in binary units', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(3 * 1024 * 1024), '3.0 MiB');
});

test('one line per interval at most, with bytes, total, percentage and rate; the digest of all bytes', async () => {
  let now = 0;
  const lines: string[] = [];
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const meter = new DownloadMeter({ label: 'public/image.tar', total: 10 * chunk.length, emit: (l) => lines.push(l), intervalMs: 5000, now: () => now });
  const chunks = Array.from({ length: 10 }, () => chunk);
  await pipeline(Readable.from((async function* () {
    for (const c of chunks) { now += 1000; yield c; } // 1 MiB per second
  })()), meter, async (s: AsyncIterable<Buffer>) => { for await (const _ of s) { /* drain */ } });
  assert.deepEqual(lines, [
    'Downloading public/image.tar: 5.0 MiB of 10.0 MiB (50%), 1.0 MiB/s',
    'Downloading public/image.tar: 10.0 MiB of 10.0 MiB (100%), 1.0 MiB/s',
  ]);
  assert.equal(meter.bytes, 10 * chunk.length);
  const expected = createHash('sha256');
  for (const c of chunks) expected.update(c);
  assert.equal(meter.digest, `sha256:${expected.digest('hex')}`);
});

test('without a known total the line gives bytes and rate only', () => {
  const meter = new DownloadMeter({ label: 'x', emit: () => {}, now: () => 0 });
  assert.equal(meter.progressLine(2000), 'Downloading x: 0 B, 0 B/s');
});
