// Bad input of every kind gets Taskcluster's error bodies ({code, message, requestInfo}) with
// the right status, never a stack trace, and never takes the service down.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Hawk from '@hapi/hawk';
import { startCheckedEmbedded, type CheckedDeployment } from './schema-check.ts';
import { silentLog } from '../../lib/log/worker-log.ts';

let d: CheckedDeployment;
let stateDir: string;
before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'bad-input-'));
  d = await startCheckedEmbedded({ stateDir, port: 0, log: silentLog, claimWorkWaitSeconds: 0.2 });
});
after(async () => { await d.close(); rmSync(stateDir, { recursive: true, force: true }); });

async function send(method: string, route: string, body?: string | Buffer, opts: { sign?: boolean; authorization?: string } = {}) {
  const url = `${d.rootUrl}${route}`;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.sign !== false) {
    headers.authorization = Hawk.client.header(url, method, { credentials: { id: d.credentials.clientId, key: d.credentials.accessToken, algorithm: 'sha256' } }).header;
  }
  if (opts.authorization) headers.authorization = opts.authorization;
  const res = await fetch(url, { method, headers, body: body as BodyInit | undefined });
  const text = await res.text();
  let json: any;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, json, text };
}

function assertErrorBody(r: { json: any; text: string }, code: string) {
  assert.equal(r.json?.code, code, r.text);
  assert.equal(typeof r.json.message, 'string');
  assert.equal(typeof r.json.requestInfo, 'object');
  assert.doesNotMatch(r.text, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
}

test('a body that is not JSON is 400 InputValidationError', async () => {
  const r = await send('PUT', '/api/queue/v1/task/fN1SbArXTPSVFNUvaOlinQ', '{"payload": ');
  assert.equal(r.status, 400);
  assertErrorBody(r, 'InputValidationError');
  assert.match(r.json.message, /not valid JSON/);
});

test('a body that breaks the schema is 400 and names the problem', async () => {
  const r = await send('POST', '/api/queue/v1/claim-work/a/b', JSON.stringify({ workerGroup: 'g', tasks: 'many' }));
  assert.equal(r.status, 400);
  assertErrorBody(r, 'InputValidationError');
  assert.match(r.json.message, /workerId/);
  assert.match(r.json.message, /tasks must be integer/);
});

test('an oversize body is refused and the service keeps serving', async () => {
  const big = Buffer.alloc(11 * 1024 * 1024, 0x61);
  const r = await send('PUT', '/api/queue/v1/task/fN1SbArXTPSVFNUvaOlinQ', big);
  assert.equal(r.status, 413);
  assertErrorBody(r, 'InputTooLarge');
  const ping = await send('GET', '/api/queue/v1/ping', undefined, { sign: false });
  assert.equal(ping.status, 200);
});

test('a malformed or forged Hawk header is 401 AuthenticationFailed', async () => {
  const garbage = await send('GET', '/api/auth/v1/scopes/current', undefined, { authorization: 'Hawk this is not hawk' });
  assert.equal(garbage.status, 401);
  assertErrorBody(garbage, 'AuthenticationFailed');
  const url = `${d.rootUrl}/api/auth/v1/scopes/current`;
  const forged = Hawk.client.header(url, 'GET', { credentials: { id: d.credentials.clientId, key: 'not-the-token', algorithm: 'sha256' } }).header;
  const r = await send('GET', '/api/auth/v1/scopes/current', undefined, { authorization: forged });
  assert.equal(r.status, 401);
  assertErrorBody(r, 'AuthenticationFailed');
  const unknown = Hawk.client.header(url, 'GET', { credentials: { id: 'nobody', key: 'x', algorithm: 'sha256' } }).header;
  assert.equal((await send('GET', '/api/auth/v1/scopes/current', undefined, { authorization: unknown })).status, 401);
});

test('unknown routes, services and query parameters get Taskcluster error bodies', async () => {
  const route = await send('GET', '/api/queue/v1/no/such/route', undefined, { sign: false });
  assert.equal(route.status, 404);
  assertErrorBody(route, 'ResourceNotFound');
  const service = await send('GET', '/api/nonesuch/v1/ping', undefined, { sign: false });
  assert.equal(service.status, 404);
  assertErrorBody(service, 'ResourceNotFound');
  const query = await send('GET', '/api/queue/v1/task/fN1SbArXTPSVFNUvaOlinQ/status?bogus=1');
  assert.equal(query.status, 400);
  assertErrorBody(query, 'InputError');
  const missing = await send('GET', '/api/queue/v1/task/fN1SbArXTPSVFNUvaOlinQ');
  assert.equal(missing.status, 404);
  assertErrorBody(missing, 'ResourceNotFound');
});

test('a malformed sub-path is 404 ResourceNotFound; only path parameters (artifact and object names) take raw slashes', async () => {
  const taskId = 'fN1SbArXTPSVFNUvaOlinQ';
  for (const route of [
    `/api/queue/v1/task/${taskId}/nonsense`,
    `/api/queue/v1/task/${taskId}/status/extra`,
    `/api/queue/v1/task-group/${taskId}/list/more`,
    `/api/queue/v1/provisioners/a/b`,
    `/api/auth/v1/roles/a/b/c`,
    `/api/index/v1/task/a.b/c`,
    `/api/queue/v1/task-queues/prov/type`,
  ]) {
    const r = await send('GET', route);
    assert.equal(r.status, 404, `${route}: ${r.text}`);
    assertErrorBody(r, 'ResourceNotFound');
  }
  // An encoded slash is an ordinary parameter value.
  const role = await send('GET', '/api/auth/v1/roles/a%2Fb%2Fc');
  assert.equal(role.status, 404);
  assert.match(role.json.message, /a\/b\/c/);

  // Names are paths: raw slashes reach the handler (404 for the missing task, not for the route).
  const artifact = await send('GET', `/api/queue/v1/task/${taskId}/runs/0/artifacts/public/logs/live.log`);
  assert.equal(artifact.status, 404);
  assert.match(artifact.json.message, new RegExp(taskId));
  const object = await send('GET', '/api/object/v1/metadata/some/object/name');
  assert.equal(object.status, 404);
  assert.match(object.json.message, /some\/object\/name/);
  // ...and so are the ids that used to be two path segments (claimWork's and purge-cache's).
  const claim = await send('POST', '/api/queue/v1/claim-work/raw-prov/raw-type', JSON.stringify({ workerGroup: 'g', workerId: 'w', tasks: 1 }));
  assert.equal(claim.status, 200, claim.text);
  assert.deepEqual(claim.json, { tasks: [] });
  const purge = await send('GET', '/api/purge-cache/v1/purge-cache/raw-prov/raw-type');
  assert.equal(purge.status, 200, purge.text);
  // The index's root namespace is the empty one.
  assert.equal((await send('GET', '/api/index/v1/namespaces/')).status, 200);
});

test('a deployment refuses timings that would break it: a claim timeout under 1 s, no claimWork wait, no sweep interval', async () => {
  for (const [setting, value] of [['claimTimeoutSeconds', 0], ['claimTimeoutSeconds', 0.5], ['claimWorkWaitSeconds', 0], ['sweepIntervalSeconds', -1]] as const) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bad-settings-'));
    try {
      await assert.rejects(startCheckedEmbedded({ stateDir: dir, port: 0, log: silentLog, [setting]: value }),
        (err: Error) => err instanceof RangeError && err.message.includes(`${setting} must be at least`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('a body nested 3,000 levels deep is taken (as the real queue takes it); deeper than 4,000 is 400, never 500', async () => {
  const slug = () => ['JbxP2Bn1TmG2V6sQ3Wn3rA', 'Ba3ZKJ1JSzW5ZxkmwUcmAg'];
  const task = (depth: number) => `{"taskQueueId":"deep-prov/deep","created":"${new Date().toJSON()}","deadline":"${new Date(Date.now() + 3600_000).toJSON()}",` +
    `"metadata":{"name":"a","description":"b","owner":"a@b.c","source":"https://x.y/z"},"payload":${'{"a":'.repeat(depth)}{}${'}'.repeat(depth)}}`;
  const [deepId, deeperId] = slug();
  const taken = await send('PUT', `/api/queue/v1/task/${deepId}`, task(3000));
  assert.equal(taken.status, 200, taken.text.slice(0, 300));
  assert.equal((await send('GET', `/api/queue/v1/task/${deepId}`)).status, 200);
  for (const depth of [4001, 100_000]) {
    const refused = await send('PUT', `/api/queue/v1/task/${deeperId}`, task(depth));
    assert.equal(refused.status, 400, `${depth}: ${refused.text.slice(0, 300)}`);
    assertErrorBody(refused, 'InputValidationError');
    assert.match(refused.json.message, /nested more than 4000 levels deep/);
  }
  assert.equal((await send('GET', '/api/queue/v1/ping')).status, 200, 'the service is still up');
});
