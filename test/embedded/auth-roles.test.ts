// Roles of the embedded auth service and how they expand a client's scopes, over real HTTP.
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

const assertSchema = (name: string, body: unknown) =>
  assert.deepEqual(schemaErrors(`/schemas/auth/v1/${name}.json#`, body), [], `${name} response`);
const authAs = (credentials?: { clientId: string; accessToken: string }) =>
  new taskcluster.Auth({ rootUrl: deployment.rootUrl, credentials, retries: 0 });
const fails = (status: number, code: string, message?: RegExp) => (err: any) => {
  assert.equal(err.statusCode, status, `expected ${status} ${code}, got ${err.statusCode} ${err.code}: ${err.message}`);
  assert.equal(err.code, code);
  if (message) assert.match(err.message, message);
  return true;
};
const role = (scopes: string[], description = 'test role') => ({ description, scopes });
async function clientWith(clientId: string, scopes: string[]) {
  const created = await root.createClient(clientId, { description: clientId, expires: taskcluster.fromNow('1 hour'), scopes });
  return authAs(created);
}

before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'auth-roles-'));
  deployment = await startCheckedEmbedded({ stateDir, port: 0, log: silentLog });
  root = authAs(deployment.credentials);
});
after(async () => {
  await deployment.close();
  rmSync(stateDir, { recursive: true, force: true });
});

test('assume:<role> expands through chains of roles', async () => {
  await root.createRole('project:web', role(['assume:team:infra', 'queue:create-task:web/*']));
  await root.createRole('team:infra', role(['secrets:get:infra/*']));
  const client = await clientWith('chain/user', ['assume:project:web', 'auth:current-scopes']);
  assert.deepEqual((await client.currentScopes()).scopes, [
    'assume:project:web', 'assume:team:infra', 'auth:current-scopes', 'queue:create-task:web/*', 'secrets:get:infra/*',
  ]);
  const fetched = await root.role('project:web');
  assertSchema('get-role-response', fetched);
  assert.deepEqual(fetched.expandedScopes, ['assume:project:web', 'assume:team:infra', 'queue:create-task:web/*', 'secrets:get:infra/*']);
});

test('a role ending in * matches by prefix and fills <..> with the rest', async () => {
  await root.createRole('repo:github.com/*', role(['assume:repo-group:<..>', 'github:status:<..>', 'queue:route:gh']));
  await root.createRole('repo-group:org/app', role(['app:deploy']));
  const client = await clientWith('prefix/user', ['assume:repo:github.com/org/app', 'auth:current-scopes']);
  assert.deepEqual((await client.currentScopes()).scopes, [
    'app:deploy', 'assume:repo-group:org/app', 'assume:repo:github.com/org/app', 'auth:current-scopes',
    'github:status:org/app', 'queue:route:gh',
  ]);
  // A star in the assumed scope replaces <..> and everything after it.
  const expanded = await root.expandScopes({ scopes: ['assume:repo:github.com/org/*'] });
  assertSchema('scopeset', expanded);
  assert.deepEqual(expanded.scopes, [
    'app:deploy', 'assume:repo-group:org/*', 'assume:repo:github.com/org/*', 'github:status:org/*', 'queue:route:gh',
  ]);
});

test('a star scope assumes every role it matches', async () => {
  await root.createRole('star-test:one', role(['star:one']));
  await root.createRole('star-test:two', role(['star:two']));
  const { scopes } = await root.expandScopes({ scopes: ['assume:star-test:*'] });
  assert.deepEqual(scopes, ['assume:star-test:*', 'star:one', 'star:two']);
});

test('changing or deleting a role changes what clients can do at once', async () => {
  await root.createRole('mutable', role(['before:change']));
  const client = await clientWith('mutable/user', ['assume:mutable', 'auth:current-scopes']);
  assert.deepEqual((await client.currentScopes()).scopes, ['assume:mutable', 'auth:current-scopes', 'before:change']);
  const updated = await root.updateRole('mutable', role(['after:change'], 'changed'));
  assertSchema('get-role-response', updated);
  assert.deepEqual((await client.currentScopes()).scopes, ['after:change', 'assume:mutable', 'auth:current-scopes']);
  assert.equal(await root.deleteRole('mutable'), undefined);
  assert.deepEqual((await client.currentScopes()).scopes, ['assume:mutable', 'auth:current-scopes']);
  await root.deleteRole('mutable');
  await assert.rejects(root.role('mutable'), fails(404, 'ResourceNotFound'));
});

test('roles that assume each other are refused', async () => {
  await root.createRole('cycle:a', role(['assume:cycle:b']));
  await assert.rejects(root.createRole('cycle:b', role(['assume:cycle:a'])), fails(400, 'InputError', /cycle/));
  await assert.rejects(root.createRole('cycle:self', role(['assume:cycle:self'])), fails(400, 'InputError', /cycle/));
  await assert.rejects(root.createRole('param:*', role(['a:<..>:<..>'])), fails(400, 'InputError', /multiple/));
  await assert.rejects(root.role('cycle:b'), fails(404, 'ResourceNotFound'));
});

test('createRole is idempotent for identical roles and 409 for different ones', async () => {
  const first = await root.createRole('idem', role(['b:scope', 'a:scope']));
  assert.deepEqual(first.scopes, ['a:scope', 'b:scope']);
  const again = await root.createRole('idem', role(['a:scope', 'b:scope']));
  assert.equal(again.created, first.created);
  await assert.rejects(root.createRole('idem', role(['c:scope'])), fails(409, 'RequestConflict', /idem/));
});

test('creating and updating roles need the scopes being granted', async () => {
  await root.createRole('managed', role(['old:scope']));
  const manager = await clientWith('roles/manager', ['auth:create-role:managed*', 'auth:update-role:managed*', 'mine:*']);
  await assert.rejects(manager.createRole('managed2', role(['other:scope'])), fails(403, 'InsufficientScopes', /other:scope/));
  await manager.createRole('managed2', role(['mine:a']));
  // Keeping old:scope (already granted) is fine; adding other:scope is not.
  await manager.updateRole('managed', role(['old:scope', 'mine:b']));
  await assert.rejects(manager.updateRole('managed', role(['old:scope', 'other:scope'])), fails(403, 'InsufficientScopes', /other:scope/));
  await assert.rejects(root.updateRole('no-such-role', role([])), fails(404, 'ResourceNotFound'));
});

test('listRoles, listRoles2 and listRoleIds list every role; the paged ones page', async () => {
  for (const id of ['page:1', 'page:2', 'page:3']) await root.createRole(id, role([`${id}:scope`]));
  const all = await root.listRoles();
  assertSchema('list-roles-response', all);
  const ids = all.map((r: any) => r.roleId);
  assert.ok(ids.includes('anonymous') && ids.includes('page:2'));

  const seen: string[] = [];
  let query: Record<string, unknown> = { limit: 2 };
  for (let i = 0; i < 100; i++) {
    const res = await root.listRoleIds(query);
    assertSchema('list-role-ids-response', res);
    seen.push(...res.roleIds);
    if (!res.continuationToken) break;
    query = { limit: 2, continuationToken: res.continuationToken };
  }
  assert.deepEqual(seen, ids);
  const page = await root.listRoles2({ limit: 1 });
  assertSchema('list-roles2-response', page);
  assert.equal(page.roles.length, 1);
  assert.equal(typeof page.continuationToken, 'string');
  const everything = await root.listRoles2();
  assert.equal(everything.continuationToken, undefined);
  assert.deepEqual(everything.roles.map((r: any) => r.roleId), ids);
});

test('requests without credentials get the anonymous role', async () => {
  const anonymousRole = await root.role('anonymous');
  assert.ok(anonymousRole.scopes.includes('queue:get-artifact:public/*'));
  assert.ok(anonymousRole.scopes.includes('queue:get-task:*'));
  const anonymous = authAs(undefined);
  await assert.rejects(anonymous.currentScopes(), fails(403, 'InsufficientScopes', /auth:current-scopes/));
  await root.updateRole('anonymous', role([...anonymousRole.scopes, 'auth:current-scopes'], anonymousRole.description));
  const { scopes } = await anonymous.currentScopes();
  assert.ok(scopes.includes('queue:get-artifact:public/*'));
  assert.ok(scopes.includes('auth:current-scopes'));
  assert.ok(!scopes.includes('queue:get-artifact:private/*'));
  await root.updateRole('anonymous', role(anonymousRole.scopes, anonymousRole.description));
  await assert.rejects(anonymous.currentScopes(), fails(403, 'InsufficientScopes'));
});

test('bad role input is 400', async () => {
  await assert.rejects(root.createRole('bad', { description: 'x' }), fails(400, 'InputValidationError', /scopes/));
  await assert.rejects(root.createRole('bad', role(['x:**'])), fails(400, 'InputError', /\*\*/));
  await assert.rejects(root.createRole('bad\u00e9', role([])), fails(400, 'InputError', /roleId/));
  await assert.rejects(root.expandScopes({ scopes: 'assume:x' }), fails(400, 'InputValidationError'));
});
