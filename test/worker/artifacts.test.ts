// What a task owner finds among a task's artifacts: files with a content type from their
// name, directories as one artifact per file, error artifacts (with a log line) for paths
// that are missing or of the wrong type, and a refusal for artifacts outliving their task.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';

let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start({ config: { capacity: 4 } }); });
after(async () => { await h?.stop(); });

/** The raw bytes and headers of an artifact, without fetch's automatic gunzip. */
async function rawArtifact(harness: WorkerHarness, taskId: string, name: string): Promise<{ status: number; body: Buffer; headers: Headers }> {
  let url = harness.queue.buildSignedUrl(harness.queue.getArtifact, taskId, 0, name) as string;
  for (let i = 0; i < 5; i++) {
    const res = await fetch(url, { redirect: 'manual', headers: { 'accept-encoding': 'identity' } });
    if (res.status >= 300 && res.status < 400) { url = new URL(res.headers.get('location')!, url).toString(); continue; }
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
  }
  throw new Error('too many redirects');
}

const writeFiles = [
  'mkdir -p /out/dir/sub/deeper',
  'echo plain text > /out/notes.txt',
  'echo \'{"ok": true}\' > /out/data.json',
  'echo compressed content | gzip > /out/archive.gz',
  'echo top > /out/dir/top.txt',
  'echo middle > /out/dir/sub/middle.txt',
  'echo bottom > /out/dir/sub/deeper/bottom.log',
].join(' && ');

for (const storageType of ['object', 's3'] as const) {
  test(`file artifacts (${storageType} storage): content type from the name; a .gz file is stored as it is`, async () => {
    const harness = storageType === 'object' ? h : await WorkerHarness.start({ config: { 'artifacts.storageType': 's3' } });
    try {
      const taskId = await harness.submit({
        image: TASKENV_PASS,
        command: ['/bin/sh', '-c', writeFiles],
        maxRunTime: 60,
        artifacts: {
          'public/notes.txt': { type: 'file', path: '/out/notes.txt' },
          'public/data.json': { type: 'file', path: '/out/data.json' },
          'public/archive.gz': { type: 'file', path: '/out/archive.gz' },
        },
      });
      assert.equal((await harness.waitForResolution(taskId)).state, 'completed');
      const listed = Object.fromEntries((await harness.listArtifacts(taskId)).map((a) => [a.name, a]));
      assert.equal(listed['public/notes.txt']?.storageType, storageType);

      const notes = await harness.artifact(taskId, 0, 'public/notes.txt');
      assert.equal(notes.status, 200);
      assert.equal(notes.text, 'plain text\n');
      assert.match(notes.headers.get('content-type') ?? '', /^text\/plain/);

      const data = await harness.artifact(taskId, 0, 'public/data.json');
      assert.equal(data.status, 200);
      assert.deepEqual(JSON.parse(data.text), { ok: true });
      assert.match(data.headers.get('content-type') ?? '', /^application\/json/);

      const archive = await rawArtifact(harness, taskId, 'public/archive.gz');
      assert.equal(archive.status, 200);
      assert.notEqual(archive.headers.get('content-encoding'), 'gzip', 'a .gz artifact must not be gzipped again');
      assert.equal(gunzipSync(archive.body).toString(), 'compressed content\n');
      assert.match(archive.headers.get('content-type') ?? '', /^application\/gzip/);
    } finally {
      if (harness !== h) await harness.stop();
    }
  });
}

test('a directory artifact uploads each file under it, nested names included', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', writeFiles],
    maxRunTime: 60,
    artifacts: { 'public/dir': { type: 'directory', path: '/out/dir' } },
  });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const names = (await h.listArtifacts(taskId)).map((a) => a.name).filter((n) => !n.startsWith('public/logs/')).sort();
  assert.deepEqual(names, ['public/dir/sub/deeper/bottom.log', 'public/dir/sub/middle.txt', 'public/dir/top.txt']);
  assert.equal((await h.artifact(taskId, 0, 'public/dir/top.txt')).text, 'top\n');
  assert.equal((await h.artifact(taskId, 0, 'public/dir/sub/middle.txt')).text, 'middle\n');
  const bottom = await h.artifact(taskId, 0, 'public/dir/sub/deeper/bottom.log');
  assert.equal(bottom.text, 'bottom\n');
  assert.match(bottom.headers.get('content-type') ?? '', /^text\/plain/);
});

test('a missing artifact path becomes an error artifact and a log line; the task still completes', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', 'echo here > /tmp/present.txt'],
    maxRunTime: 60,
    artifacts: {
      'public/missing.txt': { type: 'file', path: '/tmp/no-such-file.txt' },
      'public/missing-dir': { type: 'directory', path: '/no/such/dir' },
      'public/present.txt': { type: 'file', path: '/tmp/present.txt' },
    },
  });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const listed = Object.fromEntries((await h.listArtifacts(taskId)).map((a) => [a.name, a.storageType]));
  assert.equal(listed['public/missing.txt'], 'error');
  assert.equal(listed['public/missing-dir'], 'error');
  const missing = await h.artifact(taskId, 0, 'public/missing.txt');
  assert.equal(missing.status, 424);
  assert.match(missing.text, /file-missing-on-worker|not found/);
  assert.equal((await h.artifact(taskId, 0, 'public/present.txt')).text, 'here\n');
  const log = await h.taskLog(taskId);
  assert.match(log, /\[taskcluster:error\] Artifact "public\/missing\.txt" not found at "\/tmp\/no-such-file\.txt"/);
  assert.match(log, /\[taskcluster:error\] Artifact "public\/missing-dir" not found at "\/no\/such\/dir"/);
  assert.match(log, /Successful task run with exit code: 0/);
});

test('a directory given as a file artifact, and a file given as a directory, become error artifacts', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', writeFiles],
    maxRunTime: 60,
    artifacts: {
      'public/dir-as-file': { type: 'file', path: '/out/dir' },
      'public/file-as-dir': { type: 'directory', path: '/out/notes.txt' },
    },
  });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const listed = Object.fromEntries((await h.listArtifacts(taskId)).map((a) => [a.name, a.storageType]));
  assert.equal(listed['public/dir-as-file'], 'error', JSON.stringify(listed));
  assert.equal(listed['public/file-as-dir'], 'error', JSON.stringify(listed));
  assert.equal(Object.keys(listed).filter((n) => n.startsWith('public/dir-as-file/') || n.startsWith('public/file-as-dir/')).length, 0);
  assert.equal((await h.artifact(taskId, 0, 'public/dir-as-file')).status, 424);
  assert.equal((await h.artifact(taskId, 0, 'public/file-as-dir')).status, 424);
  const log = await h.taskLog(taskId);
  assert.match(log, /\[taskcluster:error\] Error uploading "public\/dir-as-file"\. Expected artifact to be a "file" but was "directory"/);
  assert.match(log, /\[taskcluster:error\] Error uploading "public\/file-as-dir"\. Expected artifact to be a "directory" but was "file"/);
});

test('an artifact expiring after its task is a malformed payload, said in the log', async () => {
  const expires = taskcluster.fromNow('2 days').toISOString();
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', 'echo should not run; touch /tmp/a.txt'],
    maxRunTime: 60,
    artifacts: { 'public/a.txt': { type: 'file', path: '/tmp/a.txt', expires: taskcluster.fromNow('1 year').toISOString() } },
  }, { expires });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs[0].reasonResolved, 'malformed-payload');
  const log = await h.taskLog(taskId);
  assert.match(log, /payload\.artifacts\["?public\/a\.txt"?\]\.expires is .*later than the task's expires/);
  assert.doesNotMatch(log, /should not run/);
});
