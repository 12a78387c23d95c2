// The embedded auth service's clients, driven through taskcluster-client over real HTTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import { startCheckedEmbedded, schemaErrors, type CheckedDeployment } from './schema-check.ts';
import { silentLog } from '../../lib/log/worker-log.ts';

let stateDir: string;
let deployment: CheckedDeployment;
let root: any;

const schema = (name: string) => `/schemas/auth/v1/${name}.json#`;
const assertSchema = (name: string, body: unknown) => assert.deepEqual(schemaErrors(schema(name), body), [], `${name} response`);
const authAs = (credentials: { clientId: string; accessToken: string }, extra: Record<string, unknown> = {}) =>
  new taskcluster.Auth({ rootUrl: deployment.rootUrl, credentials, retries: 0, ...extra });
const fails = (status: number, code: string, message?: RegExp) => (err: any) => {
  assert.equal(err.statusCode, status, `expected ${status} ${code}, got ${err.statusCode} ${err.code}: ${err.message}`);
  assert.equal(err.code, code);
  if (message) assert.match(err.message, message);
  return true;
};
const expiresIn = (spec: string) => taskcluster.fromNow(spec).toJSON();

before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'auth-clients-'));
  deployment = await startCheckedEmbedded({ stateDir, port: 0, log: silentLog, sweepIntervalSeconds: 1 });
  root = authAs(deployment.credentials);
});
after(async () => {
  await deployment.close();
  rmSync(stateDir, { recursive: true, force: true });
});

test('a created client authenticates with its accessToken and has exactly its scopes', async () => {
  const created = await root.createClient('project/alice', {
    description: 'alice', expires: expiresIn('1 hour'), scopes: ['auth:current-scopes', 'queue:create-task:*'],
  });
  assertSchema('create-client-response', created);
  assert.equal(created.clientId, 'project/alice');
  assert.deepEqual(created.scopes, ['auth:current-scopes', 'queue:create-task:*']);
  const alice = authAs(created);
  const current = await alice.currentScopes();
  assertSchema('scopeset', current);
  assert.deepEqual(current.scopes, ['auth:current-scopes', 'queue:create-task:*']);
  await assert.rejects(alice.listClients(), fails(403, 'InsufficientScopes', /auth:list-clients/));

  const fetched = await root.client('project/alice');
  assertSchema('get-client-response', fetched);
  assert.equal(fetched.accessToken, undefined, 'the accessToken is only returned on creation');
});

test('a wrong accessToken is 401 AuthenticationFailed', async () => {
  await root.createClient('project/bob', { description: 'bob', expires: expiresIn('1 hour'), scopes: ['auth:current-scopes'] });
  const impostor = authAs({ clientId: 'project/bob', accessToken: 'x'.repeat(44) });
  await assert.rejects(impostor.currentScopes(), fails(401, 'AuthenticationFailed'));
  const unknown = authAs({ clientId: 'nobody', accessToken: 'x'.repeat(44) });
  await assert.rejects(unknown.currentScopes(), fails(401, 'AuthenticationFailed', /nobody/));
});

test('createClient needs the scopes it grants, and names the missing one', async () => {
  const creator = await root.createClient('project/creator', {
    description: 'creator', expires: expiresIn('1 hour'), scopes: ['auth:create-client:project/*', 'queue:*'],
  });
  const api = authAs(creator);
  await assert.rejects(
    api.createClient('project/child', { description: 'c', expires: expiresIn('1 hour'), scopes: ['secrets:get:prod'] }),
    fails(403, 'InsufficientScopes', /secrets:get:prod/));
  await assert.rejects(
    api.createClient('other/child', { description: 'c', expires: expiresIn('1 hour'), scopes: [] }),
    fails(403, 'InsufficientScopes', /auth:create-client:other\/child/));
  const child = await api.createClient('project/child', { description: 'c', expires: expiresIn('1 hour'), scopes: ['queue:create-task:x'] });
  assert.deepEqual(child.expandedScopes, ['queue:create-task:x']);
});

test('repeating an identical createClient returns the same client; a different one is 409', async () => {
  const request = { description: 'retry', expires: expiresIn('1 hour'), scopes: ['a:b'] };
  const first = await root.createClient('project/retry', request);
  const again = await root.createClient('project/retry', request);
  assert.equal(again.accessToken, first.accessToken);
  await assert.rejects(root.createClient('project/retry', { ...request, scopes: ['a:c'] }),
    fails(409, 'RequestConflict', /already exists/));
});

test('listClients filters by prefix and pages with continuationToken', async () => {
  for (const id of ['list/a', 'list/b', 'list/c']) {
    await root.createClient(id, { description: id, expires: expiresIn('1 hour') });
  }
  const all = await root.listClients({ prefix: 'list/' });
  assertSchema('list-clients-response', all);
  assert.deepEqual(all.clients.map((c: any) => c.clientId), ['list/a', 'list/b', 'list/c']);

  const seen: string[] = [];
  let query: Record<string, unknown> = { prefix: 'list/', limit: 2 };
  for (let page = 0; page < 5; page++) {
    const res = await root.listClients(query);
    assertSchema('list-clients-response', res);
    seen.push(...res.clients.map((c: any) => c.clientId));
    if (!res.continuationToken) break;
    query = { ...query, continuationToken: res.continuationToken };
  }
  assert.deepEqual(seen, ['list/a', 'list/b', 'list/c']);
  const everyone = await root.listClients();
  assert.ok(everyone.clients.some((c: any) => c.clientId === 'static/taskcluster/root'));
  await assert.rejects(root.listClients({ continuationToken: 'garbage!' }), fails(400, 'InputError', /continuationToken/));
});

test('resetAccessToken revokes the old token', async () => {
  const created = await root.createClient('project/rotate', { description: 'r', expires: expiresIn('1 hour'), scopes: ['auth:current-scopes'] });
  const reset = await root.resetAccessToken('project/rotate');
  assertSchema('create-client-response', reset);
  assert.notEqual(reset.accessToken, created.accessToken);
  await assert.rejects(authAs(created).currentScopes(), fails(401, 'AuthenticationFailed'));
  assert.deepEqual((await authAs(reset).currentScopes()).scopes, ['auth:current-scopes']);
});

test('updateClient requires only the scopes being added', async () => {
  await root.createClient('project/target', { description: 't', expires: expiresIn('1 hour'), scopes: ['held:by-target'] });
  const editor = await root.createClient('project/editor', {
    description: 'e', expires: expiresIn('1 hour'), scopes: ['auth:update-client:project/target', 'mine:*'],
  });
  const api = authAs(editor);
  const updated = await api.updateClient('project/target', {
    description: 'changed', expires: expiresIn('2 hours'), scopes: ['held:by-target', 'mine:x'],
  });
  assertSchema('get-client-response', updated);
  assert.equal(updated.description, 'changed');
  assert.deepEqual(updated.scopes, ['held:by-target', 'mine:x']);
  await assert.rejects(
    api.updateClient('project/target', { description: 'x', expires: expiresIn('2 hours'), scopes: ['held:by-target', 'not-mine:y'] }),
    fails(403, 'InsufficientScopes', /not-mine:y/));
  const unchanged = await root.updateClient('project/target', { description: 'no scopes given', expires: expiresIn('2 hours') });
  assert.deepEqual(unchanged.scopes, ['held:by-target', 'mine:x'], 'scopes stay when the request has none');
  await assert.rejects(root.updateClient('project/missing', { description: 'x', expires: expiresIn('1 hour') }), fails(404, 'ResourceNotFound'));
});

test('a disabled client cannot authenticate until enabled again', async () => {
  const created = await root.createClient('project/toggle', { description: 't', expires: expiresIn('1 hour'), scopes: ['auth:current-scopes'] });
  const disabled = await root.disableClient('project/toggle');
  assertSchema('get-client-response', disabled);
  assert.equal(disabled.disabled, true);
  await assert.rejects(authAs(created).currentScopes(), fails(401, 'AuthenticationFailed', /disabled/));
  const enabled = await root.enableClient('project/toggle');
  assert.equal(enabled.disabled, false);
  assert.deepEqual((await authAs(created).currentScopes()).scopes, ['auth:current-scopes']);
});

test('a deleted client is gone, and deleting again succeeds', async () => {
  const created = await root.createClient('project/gone', { description: 'g', expires: expiresIn('1 hour'), scopes: ['auth:current-scopes'] });
  assert.equal(await root.deleteClient('project/gone'), undefined);
  await assert.rejects(authAs(created).currentScopes(), fails(401, 'AuthenticationFailed'));
  await assert.rejects(root.client('project/gone'), fails(404, 'ResourceNotFound'));
  await root.deleteClient('project/gone');
});

test('an expired client cannot authenticate; one marked deleteOnExpiration is deleted', async () => {
  const expired = await root.createClient('project/expired', { description: 'e', expires: expiresIn('-1 minute'), scopes: ['auth:current-scopes'] });
  await assert.rejects(authAs(expired).currentScopes(), fails(401, 'AuthenticationFailed', /expired/));
  await root.createClient('project/ephemeral', { description: 'e', expires: expiresIn('-1 minute'), deleteOnExpiration: true });
  let found = true;
  for (let i = 0; i < 100 && found; i++) {
    await new Promise((r) => setTimeout(r, 100));
    found = await root.client('project/ephemeral').then(() => true, () => false);
  }
  assert.equal(found, false, 'the sweep deletes expired clients marked deleteOnExpiration');
  assert.equal((await root.client('project/expired')).clientId, 'project/expired', 'others stay');
});

test('static clients cannot be changed through the API', async () => {
  const staticMessage = /static/;
  await assert.rejects(root.deleteClient('static/taskcluster/root'), fails(400, 'InputError', staticMessage));
  await assert.rejects(root.resetAccessToken('static/taskcluster/root'), fails(400, 'InputError', staticMessage));
  await assert.rejects(root.disableClient('static/taskcluster/root'), fails(400, 'InputError', staticMessage));
  await assert.rejects(root.updateClient('static/taskcluster/root', { description: 'x', expires: expiresIn('1 hour') }),
    fails(400, 'InputError', staticMessage));
  await assert.rejects(root.createClient('static/mine', { description: 'x', expires: expiresIn('1 hour') }),
    fails(400, 'InputError', staticMessage));
  assert.deepEqual((await root.currentScopes()).scopes, ['*'], 'the root client still works');
});

test('bad input is 400 with a readable message', async () => {
  await assert.rejects(root.createClient('project/bad', { description: 'x', expires: 'tomorrow' }),
    fails(400, 'InputValidationError', /expires/));
  await assert.rejects(root.createClient('project/bad', { expires: expiresIn('1 hour') }),
    fails(400, 'InputValidationError', /description/));
  await assert.rejects(root.createClient('bad id', { description: 'x', expires: expiresIn('1 hour') }),
    fails(400, 'InputError', /clientId/));
  await assert.rejects(root.createClient('project/bad', { description: 'x', expires: expiresIn('1 hour'), scopes: ['a:**'] }),
    fails(400, 'InputError', /\*\*/));
  await assert.rejects(root.listClients({ limit: 'many' }), fails(400, 'InputError', /limit/));
});

test('clients and roles survive a restart with the same state directory', async () => {
  const created = await root.createClient('project/durable', { description: 'd', expires: expiresIn('1 hour'), scopes: ['assume:durable-role'] });
  await root.createRole('durable-role', { description: 'd', scopes: ['auth:current-scopes', 'durable:scope'] });
  await deployment.close();
  deployment = await startCheckedEmbedded({ stateDir, port: 0, log: silentLog, sweepIntervalSeconds: 1 });
  root = authAs(deployment.credentials);
  const current = await authAs(created).currentScopes();
  assert.deepEqual(current.scopes, ['assume:durable-role', 'auth:current-scopes', 'durable:scope']);
  assert.equal((await root.role('durable-role')).description, 'd');
  assert.deepEqual((await root.currentScopes()).scopes, ['*'], 'the root client keeps working across restarts');
});
