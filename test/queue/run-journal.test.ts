// The run journal on disk (0700 folder, 0600 files, atomic replace) and what recovery does with
// entries that need no call: an expired claim is forgotten, an unreadable file removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunJournal, type JournalEntry } from '../../lib/queue/run-journal.ts';
import { recoverRuns } from '../../lib/task/recover-runs.ts';
import { silentLog } from '../../lib/log/worker-log.ts';

const entry = (taskId: string, takenUntil: string): JournalEntry => ({
  taskId, runId: 0, credentials: { clientId: 'c', accessToken: 't' }, takenUntil, logPath: '/nonexistent/log',
  logNames: { live: 'public/logs/live.log', backing: 'public/logs/live_backing.log' }, expires: new Date(Date.now() + 86400_000).toISOString(),
});

test('entries are written 0600 in a 0700 folder, updated, listed and removed', () => {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'journal-')), 'runs');
  try {
    const journal = new RunJournal(dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    journal.write(entry('taskA', '2030-01-01T00:00:00.000Z'));
    assert.equal(statSync(path.join(dir, 'taskA-0.json')).mode & 0o777, 0o600);
    journal.update('taskA', 0, { containerId: 'abc', credentials: { clientId: 'c2', accessToken: 't2' } });
    journal.update('nobody', 0, { containerId: 'x' });
    const { entries } = journal.list();
    assert.deepEqual(entries.map((e) => [e.taskId, e.containerId, e.credentials.clientId]), [['taskA', 'abc', 'c2']]);
    journal.remove('taskA', 0);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});

test('an update to the values already recorded writes nothing; a real change replaces the file', () => {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'journal-')), 'runs');
  try {
    const journal = new RunJournal(dir);
    const first = entry('taskA', '2030-01-01T00:00:00.000Z');
    journal.write(first);
    const file = path.join(dir, 'taskA-0.json');
    const written = statSync(file).ino;
    journal.update('taskA', 0, { logNames: { ...first.logNames! }, expires: first.expires });
    assert.equal(statSync(file).ino, written, 'the same log names and expiry: the file is not replaced');
    journal.update('taskA', 0, { logNames: { live: 'public/other.log', backing: 'public/other_backing.log' } });
    assert.notEqual(statSync(file).ino, written, 'new log names: the file is replaced');
    assert.equal(journal.read('taskA', 0)?.logNames?.live, 'public/other.log');
  } finally {
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});

test('recovery forgets a run whose claim expired and removes unreadable entries, calling nothing', async () => {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'journal-')), 'runs');
  try {
    const journal = new RunJournal(dir);
    journal.write(entry('expired', new Date(Date.now() - 1000).toISOString()));
    writeFileSync(path.join(dir, 'garbage-0.json'), '{ not json');
    writeFileSync(path.join(dir, 'cut-0.json.tmp'), '{"taskId"');
    const report = await recoverRuns({ journal, rootUrl: 'http://127.0.0.1:9', log: silentLog, storageType: 'object', uploadRetries: 0, tmpDir: os.tmpdir() });
    assert.deepEqual(report, { resolved: 0, expired: 1, failed: 0 });
    assert.deepEqual(readdirSync(dir), [], 'the expired entry, the unreadable one and the cut-short write are gone');
  } finally {
    rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});
