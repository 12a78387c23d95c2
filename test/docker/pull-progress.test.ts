import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PullProgressReporter } from '../../lib/docker/pull-progress.ts';

test('one line per layer state change, progress throttled per layer', () => {
  const lines: string[] = [];
  let now = 0;
  const r = new PullProgressReporter((l) => lines.push(l), { intervalMs: 1000, now: () => now });
  r.onEvent({ status: 'Pulling from team/app', id: 'v1' });
  r.onEvent({ status: 'Pulling fs layer', id: 'aaa' });
  r.onEvent({ status: 'Waiting', id: 'aaa' });
  r.onEvent({ status: 'Waiting', id: 'aaa' });
  for (let i = 1; i <= 100; i++) {
    now += 50; // 5 s of downloading in 100 events
    r.onEvent({ status: 'Downloading', id: 'aaa', progressDetail: { current: i * 1024 * 1024, total: 100 * 1024 * 1024 } });
  }
  r.onEvent({ status: 'Download complete', id: 'aaa' });
  r.onEvent({ status: 'Pull complete', id: 'aaa' });
  r.onEvent({ status: 'Digest: sha256:abc' });
  r.onEvent({ status: 'Status: Downloaded newer image for team/app:v1' });
  assert.equal(lines[0], 'Pulling from team/app');
  assert.deepEqual(lines.slice(1, 4), ['aaa: Pulling fs layer', 'aaa: Waiting', 'aaa: Downloading 1.0 MiB of 100.0 MiB']);
  const downloading = lines.filter((l) => l.startsWith('aaa: Downloading'));
  assert.ok(downloading.length >= 4 && downloading.length <= 6, `throttled: ${downloading.length} lines`);
  assert.deepEqual(lines.slice(-4), ['aaa: Download complete', 'aaa: Pull complete', 'Digest: sha256:abc', 'Status: Downloaded newer image for team/app:v1']);
});

test('events without a status print nothing', () => {
  const lines: string[] = [];
  const r = new PullProgressReporter((l) => lines.push(l));
  r.onEvent({ id: 'x' });
  r.onEvent({ status: '  ' });
  assert.deepEqual(lines, []);
});
