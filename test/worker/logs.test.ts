// The task log as its owner reads it: live while the task runs (live.log redirects to the
// worker's live log server, which streams), and complete afterwards (live.log links to the
// uploaded backing log); payload.log renames it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';

let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start({ config: { capacity: 2 } }); });
after(async () => { await h?.stop(); });

const twoLines = ['/bin/sh', '-c', 'echo first line; sleep 4; echo second line'];

test('live.log streams the task output while the task runs', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: twoLines, maxRunTime: 60 });
  await h.waitForRunning(taskId);
  const url = h.queue.buildSignedUrl(h.queue.getArtifact, taskId, 0, 'public/logs/live.log') as string;

  // The live.log reference is created while the task is prepared, just after the claim: a reader
  // asking at the very moment the run became running may see 404 for a moment (the real queue's
  // answer is slower to come, so this shows there more often).
  let redirect = await fetch(url, { redirect: 'manual' });
  for (let i = 0; i < 100 && redirect.status === 404; i++) {
    await new Promise((r) => setTimeout(r, 50));
    redirect = await fetch(url, { redirect: 'manual' });
  }
  assert.equal(redirect.status, 303);
  const location = redirect.headers.get('location') ?? '';
  assert.match(location, new RegExp(`^http://127\.0\.0\.1:${h.worker!.liveLogs.port}/log/`), 'live.log redirects to the live log server');

  const res = await fetch(url);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!/^first line\r?$/m.test(text)) {
    const { value, done } = await reader.read();
    assert.ok(!done, `the live log ended before the first line: ${text}`);
    text += decoder.decode(value, { stream: true });
  }
  // The first line arrived while the task still runs (it sleeps before its second line).
  const { status } = await h.queue.status(taskId);
  assert.equal(status.state, 'running');
  assert.doesNotMatch(text, /second line/);
  // The same stream goes on to the end of the task.
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  assert.match(text, /^second line\r?$/m);
  assert.match(text, /Successful task run with exit code: 0/);
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
});

test('after the task, live.log is a link to live_backing.log and both read the full log', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo first line; echo second line'], maxRunTime: 60 });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const listed = Object.fromEntries((await h.listArtifacts(taskId)).map((a) => [a.name, a]));
  assert.equal(listed['public/logs/live.log']?.storageType, 'link');
  assert.ok(listed['public/logs/live_backing.log'], JSON.stringify(listed));
  assert.match(listed['public/logs/live_backing.log'].contentType, /^text\/plain/);

  const live = await h.artifact(taskId, 0, 'public/logs/live.log');
  const backing = await h.artifact(taskId, 0, 'public/logs/live_backing.log');
  assert.equal(live.status, 200);
  assert.equal(backing.status, 200);
  assert.equal(live.text, backing.text);
  for (const text of [live.text, backing.text]) {
    assert.match(text, new RegExp(`Task ID: ${taskId}`));
    assert.match(text, /^first line\r?\nsecond line\r?$/m);
    assert.match(text, /=== Task Finished ===/);
    assert.match(text, /Successful task run with exit code: 0/);
  }
});

test('payload.log names the log artifact (and its backing log)', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['taskhost-who', 'custom', 'log'], maxRunTime: 60, log: 'public/build/my.log' });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const names = (await h.listArtifacts(taskId)).map((a) => a.name).sort();
  assert.deepEqual(names, ['public/build/my.log', 'public/build/my_backing.log']);
  const log = await h.artifact(taskId, 0, 'public/build/my.log');
  assert.equal(log.status, 200);
  assert.match(log.text, /^custom log\r?$/m);
  assert.equal((await h.artifact(taskId, 0, 'public/logs/live.log')).status, 404);
});

test('output from the first instruction to the last is all there, twelve short tasks at once (attached before start)', async () => {
  const wide = await WorkerHarness.start({ config: { capacity: 4 } });
  try {
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) =>
      wide.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', `echo first ${i}; i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done; echo last ${i}`], maxRunTime: 60 })));
    for (const [i, taskId] of ids.entries()) {
      assert.equal((await wide.waitForResolution(taskId)).state, 'completed');
      const log = await wide.taskLog(taskId);
      assert.match(log, new RegExp(`^first ${i}\\r?$`, 'm'), `task ${i}: the first line`);
      assert.match(log, /^line 199\r?$/m, `task ${i}: the middle`);
      assert.match(log, new RegExp(`^last ${i}\\r?$`, 'm'), `task ${i}: the last line, printed just before the exit`);
    }
  } finally {
    await wide.stop();
  }
});

test('a task printing from its first instruction, fast, to its last: every byte once, right after the start line (TTY)', async () => {
  // The worker attaches before it starts the container (create, attach, start: docker run's
  // order), so nothing the task writes before the attach could have been made is lost, and
  // nothing is read twice. 8 MiB with no line breaks outruns any reader.
  const size = 8 * 1024 * 1024;
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', `printf FIRST; head -c ${size} /dev/zero | tr '\\0' a; printf LAST`], maxRunTime: 120 });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const log = await h.taskLog(taskId);
  const start = log.indexOf('FIRST');
  assert.ok(start > 0, 'the first bytes are there');
  assert.match(log.slice(0, start), /=== Task Starting ===\r?\n$/, 'right after the start line');
  const output = log.slice(start, log.indexOf('LAST', start) + 4);
  assert.equal(output.length, size + 'FIRSTLAST'.length, 'every byte, once');
  assert.match(output, /^FIRSTa+LAST$/);
  assert.equal(log.split('FIRST').length, 2, 'never repeated');
});
