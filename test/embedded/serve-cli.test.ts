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

test('after SIGKILL, a restart on the same state keeps everything that was acknowledged', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'serve-cli-kill-'));
  try {
    const first = await runServe(['--port', '0', '--state', stateDir]);
    const running = taskcluster.slugid();
    const completed = taskcluster.slugid();
    let claimCredentials: object;
    try {
      const credentials: CredentialsFile = JSON.parse(readFileSync(path.join(stateDir, 'credentials.json'), 'utf8'));
      const opts = { rootUrl: first.rootUrl, credentials, retries: 0 };
      const queue = new taskcluster.Queue(opts);
      await queue.createTask(completed, taskDef('serve-kill/q'));
      const [done] = (await queue.claimWork('serve-kill/q', { workerGroup: 'g', workerId: 'w', tasks: 1 })).tasks;
      const doneWorker = new taskcluster.Queue({ ...opts, credentials: done.credentials });
      const s3 = await doneWorker.createArtifact(completed, 0, 'public/result.txt', { storageType: 's3', contentType: 'text/plain', expires: taskcluster.fromNow('1 day') });
      assert.equal((await fetch(s3.putUrl, { method: 'PUT', body: 'result', headers: { 'content-type': 'text/plain' } })).status, 200);
      await doneWorker.reportCompleted(completed, 0);
      await queue.createTask(running, taskDef('serve-kill/q'));
      const [claim] = (await queue.claimWork('serve-kill/q', { workerGroup: 'g', workerId: 'w', tasks: 1 })).tasks;
      claimCredentials = claim.credentials;
      await new taskcluster.Auth(opts).createClient('kept/client', { description: 'made before the kill', expires: taskcluster.fromNow('1 day'), scopes: ['a:b'] });
      await new taskcluster.Index(opts).insertTask('kill.kept', { taskId: completed, rank: 1, data: {}, expires: taskcluster.fromNow('1 day') });
      await new taskcluster.PurgeCache(opts).purgeCache('kill-prov/kill-type', { cacheName: 'c' });
      // The last answer is in: kill at once, no shutdown.
      assert.deepEqual(await first.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
    } finally {
      await first.stop('SIGKILL');
    }

    const second = await runServe(['--port', '0', '--state', stateDir]);
    try {
      const credentials: CredentialsFile = JSON.parse(readFileSync(path.join(stateDir, 'credentials.json'), 'utf8'));
      const opts = { rootUrl: second.rootUrl, credentials, retries: 0 };
      const queue = new taskcluster.Queue(opts);
      assert.equal((await queue.status(completed)).status.state, 'completed');
      const location = (await fetch(queue.buildUrl(queue.getArtifact, completed, 0, 'public/result.txt'), { redirect: 'manual' })).headers.get('location')!;
      assert.equal(await (await fetch(location)).text(), 'result');
      assert.equal((await queue.status(running)).status.state, 'running');
      const worker = new taskcluster.Queue({ ...opts, credentials: claimCredentials });
      assert.equal((await worker.reportCompleted(running, 0)).status.state, 'completed', 'the claim survived');
      assert.deepEqual((await new taskcluster.Auth(opts).client('kept/client')).scopes, ['a:b']);
      assert.equal((await new taskcluster.Index(opts).findTask('kill.kept')).taskId, completed);
      const purges = await new taskcluster.PurgeCache(opts).purgeRequests('kill-prov/kill-type');
      assert.deepEqual(purges.requests.map((r: any) => r.cacheName), ['c']);
      assert.equal((await second.stop('SIGTERM')).code, 0);
    } finally {
      await second.stop('SIGKILL');
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
});

// The whole path under load: commits interleaved with requests, a kill while groups are open,
// WAL recovery on restart. The window between a COMMIT and the answer it releases is too short
// for a kill from outside to hit reliably; that the answer waits for the COMMIT is asserted
// directly in store-group-commit.test.ts.
test('SIGKILL under 16 concurrent createTask clients: every answered task is there after a restart (group commit)', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'serve-cli-kill-load-'));
  try {
    const first = await runServe(['--port', '0', '--state', stateDir]);
    const answered: string[] = [];
    let refused = 0;
    try {
      const credentials: CredentialsFile = JSON.parse(readFileSync(path.join(stateDir, 'credentials.json'), 'utf8'));
      let killed = false;
      const clients = Array.from({ length: 16 }, async () => {
        const queue = new taskcluster.Queue({ rootUrl: first.rootUrl, credentials, retries: 0 });
        while (!killed) {
          const taskId = taskcluster.slugid();
          try {
            await queue.createTask(taskId, taskDef('serve-kill-load/q'));
            answered.push(taskId);
          } catch {
            refused++; // in flight at the kill: no answer, no promise
          }
        }
      });
      // Kill while requests are in flight and a commit group is open, once some have been answered.
      while (answered.length < 200) await new Promise((r) => setTimeout(r, 20));
      first.child.kill('SIGKILL');
      killed = true;
      await Promise.all(clients);
      assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' });
    } finally {
      await first.stop('SIGKILL');
    }
    assert.ok(refused > 0, 'the kill landed while requests were in flight');

    const second = await runServe(['--port', '0', '--state', stateDir]);
    try {
      const credentials: CredentialsFile = JSON.parse(readFileSync(path.join(stateDir, 'credentials.json'), 'utf8'));
      const queue = new taskcluster.Queue({ rootUrl: second.rootUrl, credentials, retries: 0 });
      const missing: string[] = [];
      for (const taskId of answered) {
        try { await queue.task(taskId); } catch { missing.push(taskId); }
      }
      assert.deepEqual(missing, [], `${missing.length} of ${answered.length} answered tasks were lost`);
      assert.equal((await second.stop('SIGTERM')).code, 0);
    } finally {
      await second.stop('SIGKILL');
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
});
