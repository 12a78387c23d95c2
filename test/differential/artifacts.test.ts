// Artifacts, index and purge-cache on both deployments: the upload protocol of every storage
// type, the redirects and status codes a reader gets (with and without credentials), conflicts,
// the v106 `contentLength` trap, index look-ups and the purge-cache request list.
import { test, before, after } from 'node:test';
import { createHash } from 'node:crypto';
import taskcluster from 'taskcluster-client';
import Hawk from '@hapi/hawk';
import { startSides, skipWithoutReal, answer, keys, createAndClaim, bothAnswerAlike, until, type Side, type Sides } from './sides.ts';

let sides: Sides;
before(async () => { if (!skipWithoutReal) sides = await startSides(); });
after(async () => { await sides?.close(); });
const same = <T>(scenario: (s: Side) => Promise<T>) => bothAnswerAlike(sides, scenario);
const skip = skipWithoutReal;
const expires = () => taskcluster.fromNow('1 day').toJSON();

/** A signed POST of a form-encoded body (busybox wget --post-data sends that): status and error code. */
async function formPost(s: Side, url: string, body: string): Promise<{ status: number; code?: string }> {
  const authorization = Hawk.client.header(url, 'POST', { credentials: { id: s.credentials.clientId, key: s.credentials.accessToken, algorithm: 'sha256' } }).header;
  const res = await fetch(url, { method: 'POST', headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' }, body });
  const text = await res.text();
  return { status: res.status, ...(res.status >= 400 ? { code: (JSON.parse(text) as { code?: string }).code } : {}) };
}

/** GET without following redirects, anonymously unless a URL is signed: status, and where it points. */
async function read(url: string): Promise<{ status: number; redirect?: string; body?: string }> {
  const res = await fetch(url, { redirect: 'manual' });
  const location = res.headers.get('location');
  const body = res.status === 200 ? await res.text() : (await res.body?.cancel(), undefined);
  return { status: res.status, ...(location ? { redirect: new URL(location).protocol } : {}), ...(body !== undefined ? { body } : {}) };
}

const artifactUrl = (s: Side, taskId: string, name: string) => `${s.rootUrl}/api/queue/v1/task/${taskId}/runs/0/artifacts/${encodeURIComponent(name)}`;

/** The object upload protocol by hand (createUpload with putUrl, PUT, finishUpload, finishArtifact). */
async function uploadObject(s: Side, worker: any, taskId: string, name: string, data: Buffer, extra: Record<string, unknown> = {}) {
  const created = await worker.createArtifact(taskId, 0, name, { storageType: 'object', expires: expires(), contentType: 'text/plain', ...extra });
  const object = s.client('Object', created.credentials);
  const offer = await object.createUpload(created.name, {
    projectId: created.projectId, uploadId: created.uploadId, expires: created.expires,
    proposedUploadMethods: { putUrl: { contentType: 'text/plain', contentLength: data.length } },
  });
  const put = await fetch(offer.uploadMethod.putUrl.url, { method: 'PUT', headers: offer.uploadMethod.putUrl.headers, body: new Uint8Array(data) });
  await object.finishUpload(created.name, { projectId: created.projectId, uploadId: created.uploadId, hashes: { sha256: createHash('sha256').update(data).digest('hex') } });
  const beforeFinish = await read(artifactUrl(s, taskId, name));
  const finished = await answer(worker.finishArtifact(taskId, 0, name, { uploadId: created.uploadId }));
  return { createdKeys: keys(created), offerKeys: keys(offer.uploadMethod.putUrl), put: put.status, beforeFinish, finished };
}

test('object artifacts: the upload protocol, 404 before finishArtifact, 303 to the bytes after, for anyone when public', { skip }, () => same(async (s) => {
  const { taskId, worker } = await createAndClaim(s);
  const upload = await uploadObject(s, worker, taskId, 'public/hello.txt', Buffer.from('hello, world\n'));
  const anonymous = await read(artifactUrl(s, taskId, 'public/hello.txt'));
  const followed = await fetch(artifactUrl(s, taskId, 'public/hello.txt'));
  const latest = await read(`${s.rootUrl}/api/queue/v1/task/${taskId}/artifacts/${encodeURIComponent('public/hello.txt')}`);
  const { artifacts } = await s.queue.listArtifacts(taskId, 0);
  return {
    upload, anonymous, latest,
    content: [followed.status, await followed.text()],
    listed: artifacts.map((a: any) => ({ keys: keys(a), name: a.name, storageType: a.storageType, contentType: a.contentType })),
    info: keys(await s.queue.artifactInfo(taskId, 0, 'public/hello.txt')),
  };
}));

test('reference, link, error, s3 and private artifacts: the status codes and redirects a reader gets', { skip }, () => same(async (s) => {
  const { taskId, worker } = await createAndClaim(s);
  const created = {
    reference: await worker.createArtifact(taskId, 0, 'public/ref', { storageType: 'reference', expires: expires(), url: 'https://example.com/x', contentType: 'text/plain' }),
    error: await worker.createArtifact(taskId, 0, 'public/err', { storageType: 'error', expires: expires(), reason: 'file-missing-on-worker', message: 'no such file' }),
    s3: await worker.createArtifact(taskId, 0, 'public/s3.txt', { storageType: 's3', expires: expires(), contentType: 'text/plain' }),
  };
  const put = await fetch(created.s3.putUrl, { method: 'PUT', headers: { 'Content-Type': 'text/plain' }, body: 's3 bytes' });
  await uploadObject(s, worker, taskId, 'private/secret.txt', Buffer.from('secret'));
  await uploadObject(s, worker, taskId, 'public/target.txt', Buffer.from('target'));
  const link = await worker.createArtifact(taskId, 0, 'public/link', { storageType: 'link', expires: expires(), artifact: 'public/target.txt', contentType: 'text/plain' });
  const signed = s.queue.buildSignedUrl(s.queue.getArtifact, taskId, 0, 'private/secret.txt');
  return {
    createdKeys: Object.fromEntries(Object.entries({ ...created, link }).map(([k, v]) => [k, keys(v)])),
    s3Put: put.status,
    reference: await read(artifactUrl(s, taskId, 'public/ref')),
    error: await read(artifactUrl(s, taskId, 'public/err')),
    s3: await read(artifactUrl(s, taskId, 'public/s3.txt')),
    s3Content: await (await fetch(artifactUrl(s, taskId, 'public/s3.txt'))).text(),
    link: await read(artifactUrl(s, taskId, 'public/link')),
    linkContent: await (await fetch(artifactUrl(s, taskId, 'public/link'))).text(),
    privateAnonymous: await read(artifactUrl(s, taskId, 'private/secret.txt')),
    privateSigned: await read(signed),
    missing: await read(artifactUrl(s, taskId, 'public/none')),
    conflict: await answer(worker.createArtifact(taskId, 0, 'public/ref', { storageType: 'error', expires: expires(), reason: 'file-missing-on-worker', message: 'x' })),
    referenceMayChange: await answer(worker.createArtifact(taskId, 0, 'public/ref', { storageType: 'reference', expires: expires(), url: 'https://example.com/y', contentType: 'text/plain' })),
  };
}));

test('createArtifact with contentLength: accepted, then finishArtifact answers 500 (the artifact-created message breaks its schema) on both', { skip }, () => same(async (s) => {
  const { taskId, worker } = await createAndClaim(s);
  const upload = await uploadObject(s, worker, taskId, 'public/length.txt', Buffer.from('12345'), { contentLength: 5 });
  const again = await answer(worker.finishArtifact(taskId, 0, 'public/length.txt', { uploadId: 'any' }));
  const s3 = await answer(worker.createArtifact(taskId, 0, 'public/s3-length.txt', { storageType: 's3', expires: expires(), contentType: 'text/plain', contentLength: 5 }));
  return { upload, again, afterwards: await read(artifactUrl(s, taskId, 'public/length.txt')), s3 };
}));

test('artifacts after the run is resolved: refused once completed, allowed a while after an exception', { skip }, () => same(async (s) => {
  const done = await createAndClaim(s);
  await done.worker.reportCompleted(done.taskId, 0);
  const failedRun = await createAndClaim(s);
  await failedRun.worker.reportException(failedRun.taskId, 0, { reason: 'malformed-payload' });
  const body = { storageType: 'error', expires: expires(), reason: 'file-missing-on-worker', message: 'late' };
  return {
    afterCompleted: await answer(done.worker.createArtifact(done.taskId, 0, 'public/late', body)),
    afterException: await answer(failedRun.worker.createArtifact(failedRun.taskId, 0, 'public/late', body)),
  };
}));

test('index: insertTask and findTask answer alike; an unknown namespace is 404', { skip }, () => same(async (s) => {
  const index = s.client('Index');
  const namespace = `differential.${s.newTaskQueueId().replace(/[/-]/g, '_')}`;
  const taskId = taskcluster.slugid();
  const inserted = await index.insertTask(`${namespace}.latest`, { taskId, rank: 3, data: { a: 1 }, expires: expires() });
  const found = await index.findTask(`${namespace}.latest`);
  const listed = await index.listTasks(namespace, {});
  return {
    insertedKeys: keys(inserted), foundKeys: keys(found), found: [found.taskId === taskId, found.rank, found.data],
    listed: listed.tasks.map((t: any) => keys(t)),
    lowerRank: keys(await index.insertTask(`${namespace}.latest`, { taskId: taskcluster.slugid(), rank: 1, data: {}, expires: expires() })),
    stillFirst: (await index.findTask(`${namespace}.latest`)).taskId === taskId,
    missing: await answer(index.findTask(`${namespace}.nothing`)),
  };
}));

test('purge-cache: 204 for a request, the pool\'s list answered from a cache re-read every 10 s, since filters', { skip }, () => same(async (s) => {
  const purge = s.client('PurgeCache');
  const pool = s.newTaskQueueId();
  const first = await purge.purgeRequests(pool);
  const started = Date.now();
  await purge.purgeCache(pool, { cacheName: 'builds' });
  const atOnce = await purge.purgeRequests(pool);
  const listed = await until('the purge request to be listed', 15_000, async () => {
    const { requests } = await purge.purgeRequests(pool);
    return requests.length ? requests : undefined;
  });
  const seconds = (Date.now() - started) / 1000;
  const later = new Date(Date.parse(listed[0].before) + 1000).toJSON();
  return {
    firstKeys: keys(first), atOnce: atOnce.requests.length,
    listedWithin: seconds <= 11, listed: listed.map((r: any) => ({ keys: keys(r), cacheName: r.cacheName, pool: `${r.provisionerId}/${r.workerType}` === pool })),
    since: (await purge.purgeRequests(pool, { since: later })).requests.length,
    badPool: await answer(purge.purgeRequests('no-slash')),
    formBody: await formPost(s, `${s.rootUrl}/api/purge-cache/v1/purge-cache/${encodeURIComponent(pool)}`, 'cacheName=builds'),
  };
}));
