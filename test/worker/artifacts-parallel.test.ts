// A task's artifacts are uploaded in parallel (artifacts.uploadParallelism): many file
// artifacts arrive whole, a directory of many files arrives file by file (small ones buffered,
// a big one streamed), and when one upload fails for good the others still get their chance,
// a missing path still becomes an error artifact, and the run is exception/internal-error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';
import { startWorkerBehind } from './test-proxy.ts';
import { TestProxy } from '../support/fault-proxy.ts';

let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start({ config: { capacity: 2, 'artifacts.uploadParallelism': 4 } }); });
after(async () => { await h?.stop(); });

async function artifactBytes(harness: WorkerHarness, taskId: string, name: string): Promise<{ status: number; body: Buffer }> {
  const url = harness.queue.buildSignedUrl(harness.queue.getArtifact, taskId, 0, name) as string;
  const res = await fetch(url);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

interface Listed { name: string; storageType: string; contentType: string; expires: string }

async function allArtifacts(harness: WorkerHarness, taskId: string): Promise<Listed[]> {
  const out: Listed[] = [];
  let continuationToken: string | undefined;
  do {
    const page = await harness.queue.listArtifacts(taskId, 0, continuationToken ? { continuationToken } : {}) as { artifacts: Listed[]; continuationToken?: string };
    out.push(...page.artifacts);
    continuationToken = page.continuationToken;
  } while (continuationToken);
  return out;
}

/** `sha256sum` lines of the task log: path → hash. */
function sums(log: string): Map<string, string> {
  return new Map([...log.matchAll(/^([0-9a-f]{64}) {2}(\S+)\r?$/gm)].map((m) => [m[2]!, m[1]!]));
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** An expiry as the queue stores it (whole milliseconds, ISO). */
const iso = (d: Date) => new Date(d).toISOString();

test('16 file artifacts of 2 MiB each arrive whole, each with its content type and expiry', async () => {
  const taskExpires = taskcluster.fromNow('3 days') as Date;
  const ownExpires = taskcluster.fromNow('2 days') as Date;
  const artifacts: Record<string, { type: 'file'; path: string; expires?: string }> = {};
  for (let i = 1; i <= 16; i++) {
    const ext = i % 2 ? 'bin' : 'txt';
    artifacts[`public/many/f${i}.${ext}`] = { type: 'file', path: `/out/f${i}.${ext}`, ...(i === 5 ? { expires: iso(ownExpires) } : {}) };
  }
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', 'mkdir /out && for i in $(seq 1 16); do head -c 2097152 /dev/urandom > /out/f$i.$([ $((i % 2)) = 1 ] && echo bin || echo txt); done && sha256sum /out/*'],
    maxRunTime: 120, artifacts,
  }, { expires: iso(taskExpires) });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const expected = sums(await h.taskLog(taskId));
  assert.equal(expected.size, 16);
  const listed = new Map((await allArtifacts(h, taskId)).map((a) => [a.name, a]));
  for (let i = 1; i <= 16; i++) {
    const ext = i % 2 ? 'bin' : 'txt';
    const name = `public/many/f${i}.${ext}`;
    const got = await artifactBytes(h, taskId, name);
    assert.equal(got.status, 200);
    assert.equal(got.body.length, 2097152);
    assert.equal(sha256(got.body), expected.get(`/out/f${i}.${ext}`), name);
    const entry = listed.get(name);
    assert.equal(entry?.storageType, 'object', name);
    assert.match(entry!.contentType, ext === 'bin' ? /^application\/octet-stream/ : /^text\/plain/, name);
    assert.equal(iso(new Date(entry!.expires)), iso(i === 5 ? ownExpires : taskExpires), name);
  }
});

test('a directory of 400 files (small ones, empty ones, one of 3 MiB among them) arrives file by file', async () => {
  const script = [
    'mkdir -p /out/d/a /out/d/b/c',
    'for i in $(seq 1 200); do echo "file a$i" > /out/d/a/f$i.txt; done',
    'for i in $(seq 1 190); do head -c $((i * 97)) /dev/urandom > /out/d/b/c/r$i.bin; done',
    'for i in $(seq 1 9); do : > /out/d/empty$i; done',
    'head -c 3145728 /dev/urandom > /out/d/b/big.bin',
    'sha256sum /out/d/b/big.bin /out/d/b/c/r150.bin',
  ].join(' && ');
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', script], maxRunTime: 120, artifacts: { 'public/d': { type: 'directory', path: '/out/d' } } });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed');
  const expected = sums(await h.taskLog(taskId));
  const names = (await allArtifacts(h, taskId)).map((a) => a.name).filter((n) => n.startsWith('public/d/'));
  assert.equal(names.length, 400);
  assert.match((await allArtifacts(h, taskId)).find((a) => a.name === 'public/d/a/f1.txt')!.contentType, /^text\/plain/);
  assert.equal(new Set(names).size, 400);
  for (const i of [1, 77, 200]) assert.equal((await h.artifact(taskId, 0, `public/d/a/f${i}.txt`)).text, `file a${i}\n`);
  assert.equal((await artifactBytes(h, taskId, 'public/d/empty3')).body.length, 0);
  const big = await artifactBytes(h, taskId, 'public/d/b/big.bin');
  assert.equal(sha256(big.body), expected.get('/out/d/b/big.bin'));
  const r150 = await artifactBytes(h, taskId, 'public/d/b/c/r150.bin');
  assert.equal(r150.body.length, 150 * 97);
  assert.equal(sha256(r150.body), expected.get('/out/d/b/c/r150.bin'));
});

test('one upload failing for good among many: the others are uploaded, the missing one is an error artifact, the run is exception/internal-error', async () => {
  const f = await WorkerHarness.start({ noWorker: true, config: { 'artifacts.uploadRetries': 0, 'artifacts.uploadParallelism': 3 } });
  const proxy = await TestProxy.start(f.rootUrl);
  try {
    proxy.answer('POST', /\/artifacts\/public%2Ff3\.txt$/, 500);
    proxy.answer('POST', /\/artifacts\/public%2Fdir%2Fg7\.txt$/, 500);
    await startWorkerBehind(f, proxy);
    const artifacts: Record<string, { type: string; path: string }> = {};
    for (let i = 1; i <= 6; i++) artifacts[`public/f${i}.txt`] = { type: 'file', path: `/out/f${i}.txt` };
    artifacts['public/dir'] = { type: 'directory', path: '/out/dir' };
    artifacts['public/missing.txt'] = { type: 'file', path: '/out/missing.txt' };
    const taskId = await f.submit({
      image: TASKENV_PASS, maxRunTime: 60, artifacts,
      command: ['/bin/sh', '-c', 'mkdir -p /out/dir && for i in $(seq 1 6); do echo f$i > /out/f$i.txt; done && for i in $(seq 1 12); do echo g$i > /out/dir/g$i.txt; done'],
    });
    const status = await f.waitForResolution(taskId);
    assert.equal(status.state, 'exception');
    assert.equal(status.runs[0]!.reasonResolved, 'internal-error');
    const log = await f.taskLog(taskId);
    // Each failure is reported once, and only the two uploads refused fail.
    assert.equal(log.match(/\[taskcluster:error\] Uploading artifact "public\/f3\.txt" failed: /g)?.length, 1);
    assert.equal(log.match(/\[taskcluster:error\] Uploading artifact "public\/dir\/g7\.txt" failed: /g)?.length, 1);
    assert.equal(log.match(/\[taskcluster:error\] Uploading artifact /g)?.length, 2);
    assert.equal(log.match(/\[taskcluster:error\] Artifact "public\/missing\.txt" not found at "\/out\/missing\.txt"/g)?.length, 1);
    assert.match(log, /Unsuccessful task run with exit code: 0 completed in/);
    const listed = new Map((await allArtifacts(f, taskId)).map((a) => [a.name, a.storageType]));
    for (let i = 1; i <= 6; i++) if (i !== 3) assert.equal((await f.artifact(taskId, 0, `public/f${i}.txt`)).text, `f${i}\n`);
    for (let i = 1; i <= 12; i++) if (i !== 7) assert.equal((await f.artifact(taskId, 0, `public/dir/g${i}.txt`)).text, `g${i}\n`);
    assert.equal(listed.has('public/f3.txt'), false);
    assert.equal(listed.has('public/dir/g7.txt'), false);
    assert.equal(listed.get('public/missing.txt'), 'error');
  } finally {
    await f.stop();
    await proxy.close();
  }
});
