import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatLogLine, formatErrorLine, formatWarningLine, formatLogHeader, formatLogFooter,
  TASK_STARTING, TASK_FINISHED,
} from '../../lib/log/format.ts';

const at = new Date('2026-11-23T10:00:00.000Z');

test('a worker line carries the docker-worker timestamp prefix', () => {
  assert.equal(formatLogLine('Downloading image', at), '[taskcluster 2026-11-23 10:00:00.000Z] Downloading image\n');
  assert.equal(formatLogLine(TASK_STARTING, at), '[taskcluster 2026-11-23 10:00:00.000Z] === Task Starting ===\n');
  assert.equal(formatLogLine(TASK_FINISHED, at), '[taskcluster 2026-11-23 10:00:00.000Z] === Task Finished ===\n');
});

test('error and warning lines always start on a fresh line', () => {
  assert.equal(formatErrorLine('Pulling docker image has failed.'), '\n[taskcluster:error] Pulling docker image has failed.\n');
  assert.equal(formatWarningLine('cache is stale'), '\n[taskcluster:warn] cache is stale\n');
});

test('the header lists who ran the task, then a blank line', () => {
  const header = formatLogHeader({
    taskId: 'T1', workerId: 'w-1', workerGroup: 'g', workerNodeType: 'm5.large', workerPool: 'prov/type',
    workerVersion: '0.1.0', publicIp: '10.0.0.1', hostname: 'host-a', caches: { 'level-3-checkouts': '/checkouts' },
  }, at);
  const prefix = '[taskcluster 2026-11-23 10:00:00.000Z] ';
  assert.equal(header, [
    'Task ID: T1', 'Worker ID: w-1', 'Worker Group: g', 'Worker Node Type: m5.large', 'Worker Pool: prov/type',
    'Worker Version: 0.1.0', 'Public IP: 10.0.0.1', 'Hostname: host-a', 'using cache "level-3-checkouts" -> /checkouts',
  ].map((l) => `${prefix}${l}\n`).join('') + '\r\n');
});

test('the header keeps the old "Worker Type:" line when given', () => {
  const header = formatLogHeader({
    taskId: 'T1', workerId: 'w', workerGroup: 'g', workerNodeType: 'n', workerPool: 'p/t', workerType: 't',
    workerVersion: 'v', publicIp: 'ip',
  }, at);
  assert.match(header, /\] Worker Type: t\n/);
  assert.match(header, /\] Hostname: \S+\n/);
});

test('the footer reports success, exit code and the duration with its fraction', () => {
  const start = new Date(at.getTime() - 1234);
  assert.equal(formatLogFooter(true, 0, start, at),
    '[taskcluster 2026-11-23 10:00:00.000Z] Successful task run with exit code: 0 completed in 1.234 seconds\n');
  assert.equal(formatLogFooter(false, 3, new Date(at.getTime() - 60000), at),
    '[taskcluster 2026-11-23 10:00:00.000Z] Unsuccessful task run with exit code: 3 completed in 60 seconds\n');
  assert.match(formatLogFooter(false, -1, start, at), /Unsuccessful task run with exit code: -1 completed in 1\.234 seconds\n$/);
});
