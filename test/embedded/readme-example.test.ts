// The README's walk-through, as a newcomer follows it: `./bin/worker serve --port 0 --state DIR`,
// then `node examples/embedded-client.js DIR/credentials.json` creates a task, claims it and
// completes it. The README shows that file verbatim; this test keeps the two the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import { repoRoot, runServe } from './serve-process.ts';

const example = 'examples/embedded-client.js';

test('the README shows the walk-through commands and examples/embedded-client.js as it is', () => {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  assert.ok(readme.includes('./bin/worker serve --port 0 --state .state/embedded'), 'the serve command');
  assert.ok(readme.includes(`node ${example} .state/embedded/credentials.json`), 'the client command');
  const shown = /<!-- examples\/embedded-client\.js -->\n```js\n([\s\S]*?)```\n<!-- \/examples\/embedded-client\.js -->/.exec(readme);
  assert.ok(shown, 'the README has the example between its markers');
  assert.equal(shown[1], readFileSync(path.join(repoRoot, example), 'utf8'), 'the README copy is the file');
});

test('examples/embedded-client.js creates a task and claims and completes it on a served deployment', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'readme-example-'));
  const served = await runServe(['--port', '0', '--state', stateDir]);
  try {
    const credentialsFile = path.join(stateDir, 'credentials.json');
    const run = spawnSync(process.execPath, [example, credentialsFile], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    assert.equal(run.status, 0, run.stderr);
    const [created, claimed, resolved] = run.stdout.trim().split('\n');
    const [, taskId, taskQueueId] = /^created task (\S+) in (\S+)$/.exec(created) ?? [];
    assert.ok(taskId, created);
    assert.match(claimed, new RegExp(`^claimed run 0 as task-client/${taskId}/0/on/examples/walk-through/until/`));
    assert.equal(resolved, `task ${taskId} is completed`);

    const queue = new taskcluster.Queue({ rootUrl: served.rootUrl, credentials: JSON.parse(readFileSync(credentialsFile, 'utf8')), retries: 0 });
    const { status } = await queue.status(taskId);
    assert.equal(status.taskQueueId, taskQueueId);
    assert.deepEqual(status.runs.map((r: any) => [r.state, r.workerGroup, r.workerId]), [['completed', 'examples', 'walk-through']]);
  } finally {
    await served.stop('SIGTERM');
    rmSync(stateDir, { recursive: true, force: true });
  }
});
