// `bin/worker serve --port 0 --state DIR`, the command-line contract tests and operators
// rely on: the rootUrl on stdout once DIR/credentials.json (0600) is written and the server
// answers, the same state on the next start, a clean exit 0 on SIGTERM, bad flags refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import { runServe } from './serve-process.ts';

interface CredentialsFile { rootUrl: string; clientId: string; accessToken: string }

const taskDef = (taskQueueId: string) => ({
  taskQueueId, created: new Date().toJSON(), deadline: taskcluster.fromNow('1 hour'), payload: {},
  metadata: { name: 'serve test', description: 'a task of the serve tests', owner: 'tests@example.com', source: 'https://example.com/tests' },
});

test('serve prints the rootUrl once credentials.json is written and it answers; a restart keeps the state; SIGTERM exits 0', async () => {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'serve-cli-'));
  const stateDir = path.join(parent, 'state');
  const credentialsFile = path.join(stateDir, 'credentials.json');
  try {
    let atFirstLine: { exists: boolean; mode?: number; content?: CredentialsFile } = { exists: false };
    const first = await runServe(['--port', '0', '--state', stateDir], () => {
      // Checked the moment the line arrives, before anything else can happen.
      const exists = existsSync(credentialsFile);
      atFirstLine = exists
        ? { exists, mode: statSync(credentialsFile).mode & 0o777, content: JSON.parse(readFileSync(credentialsFile, 'utf8')) }
        : { exists };
    });
    let taskId: string;
    let accessToken: string;
    try {
      assert.match(first.rootUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.ok(atFirstLine.exists, 'credentials.json exists when the rootUrl is printed');
      assert.equal(atFirstLine.mode, 0o600);
      assert.equal(atFirstLine.content!.rootUrl, first.rootUrl);
      assert.equal(atFirstLine.content!.clientId, 'static/taskcluster/root');
      accessToken = atFirstLine.content!.accessToken;
      for (const service of ['auth', 'queue', 'object', 'index', 'purge-cache']) {
        const ping = await fetch(`${first.rootUrl}/api/${service}/v1/ping`);
        assert.equal(ping.status, 200, service);
        assert.equal((await ping.json()).alive, true);
      }

      const queue = new taskcluster.Queue({ rootUrl: first.rootUrl, credentials: atFirstLine.content, retries: 0 });
      taskId = taskcluster.slugid();
      await queue.createTask(taskId, taskDef('serve-test/kept'));

      // A claimWork long-poll (20 s on an empty queue) is waiting when SIGTERM comes.
      const started = Date.now();
      const waiting = queue.claimWork('serve-test/empty', { workerGroup: 'g', workerId: 'w', tasks: 1 });
      await new Promise((r) => setTimeout(r, 500));
      const exit = await first.stop('SIGTERM');
      assert.deepEqual(await waiting, { tasks: [] }, 'the waiting claimWork is answered with no tasks');
      assert.ok(Date.now() - started < 15_000, 'shutdown did not wait for the long-poll to run out');
      assert.deepEqual(exit, { code: 0, signal: null }, first.stderr());
    } finally {
      await first.stop('SIGKILL');
    }

    const second = await runServe(['--port', '0', '--state', stateDir]);
    try {
      const again: CredentialsFile = JSON.parse(readFileSync(credentialsFile, 'utf8'));
      assert.equal(again.rootUrl, second.rootUrl);
      assert.equal(again.accessToken, accessToken, 'the root client keeps its accessToken');
      const queue = new taskcluster.Queue({ rootUrl: second.rootUrl, credentials: again, retries: 0 });
      const { status } = await queue.status(taskId);
      assert.equal(status.state, 'pending', 'the task created before the restart is still there');
      assert.deepEqual((await second.stop('SIGINT')).code, 0, second.stderr());
    } finally {
      await second.stop('SIGKILL');
    }
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test('--claim-timeout 0 and a bad --port are refused with a one-line reason and exit 2', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'serve-cli-flags-'));
  try {
    for (const [flags, reason] of [
      [['--claim-timeout', '0'], /--claim-timeout must be a whole number of seconds, at least 1/],
      [['--claim-timeout', '1.5'], /--claim-timeout must be a whole number of seconds, at least 1/],
      [['--port', 'eighty'], /--port must be a port number/],
    ] as const) {
      await assert.rejects(runServe(['--port', '0', '--state', stateDir, ...flags]), (err: any) => {
        assert.equal(err.code, 2, err.stderr());
        assert.match(err.stderr(), reason);
        assert.doesNotMatch(err.stderr(), /\n\s+at /, 'no stack trace');
        return true;
      });
    }
    assert.equal(existsSync(path.join(stateDir, 'credentials.json')), false, 'nothing was started');
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
});
