// How the embedded deployment authenticates requests: Hawk, temporary credentials,
// authorizedScopes, bewit URLs, the test endpoints and authenticateHawk, over real HTTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Hawk from '@hapi/hawk';
import taskcluster from 'taskcluster-client';
import { startCheckedEmbedded, schemaErrors, type CheckedDeployment } from './schema-check.ts';
import { silentLog } from '../../lib/log/worker-log.ts';

interface Credentials { clientId: string; accessToken: string; certificate?: string }

let stateDir: string;
let deployment: CheckedDeployment;
let root: any;
let issuer: Credentials;

const assertSchema = (name: string, body: unknown) =>
  assert.deepEqual(schemaErrors(`/schemas/auth/v1/${name}.json#`, body), [], `${name} response`);
const authAs = (credentials?: Credentials, extra: Record<string, unknown> = {}) =>
  new taskcluster.Auth({ rootUrl: deployment.rootUrl, credentials, retries: 0, ...extra });
const fails = (status: number, code: string, message?: RegExp) => (err: any) => {
  assert.equal(err.statusCode, status, `expected ${status} ${code}, got ${err.statusCode} ${err.code}: ${err.message}`);
  assert.equal(err.code, code);
  if (message) assert.match(err.message, message);
  return true;
};
const temporary = (options: Record<string, unknown>): Credentials => taskcluster.createTemporaryCredentials({
  start: taskcluster.fromNow('-1 minute'), expiry: taskcluster.fromNow('1 hour'), credentials: issuer, ...options,
});

before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'auth-authn-'));
  deployment = await startCheckedEmbedded({ stateDir, port: 0, log: silentLog });
  root = authAs(deployment.credentials);
  await root.createRole('temp-role', { description: 'granted through a temporary credential', scopes: ['from:role'] });
  const created = await root.createClient('issuer/main', {
    description: 'issues temporary credentials', expires: taskcluster.fromNow('1 day'),
    scopes: ['auth:current-scopes', 'auth:create-client:issuer/named-*', 'assume:temp-role', 'work:*'],
  });
  issuer = { clientId: created.clientId, accessToken: created.accessToken };
});
after(async () => {
  await deployment.close();
  rmSync(stateDir, { recursive: true, force: true });
});

test('temporary credentials carry the certificate scopes, expanded by roles', async () => {
  const creds = temporary({ scopes: ['auth:current-scopes', 'assume:temp-role', 'work:a'] });
  const { scopes } = await authAs(creds).currentScopes();
  assert.deepEqual(scopes, ['assume:temp-role', 'auth:current-scopes', 'from:role', 'work:a']);
});

test('expired temporary credentials are refused', async () => {
  const creds = temporary({ scopes: ['auth:current-scopes'], start: taskcluster.fromNow('-2 hours'), expiry: taskcluster.fromNow('-1 hour') });
  await assert.rejects(authAs(creds).currentScopes(), fails(401, 'AuthenticationFailed', /expired/));
});

test('a temporary credential with a tampered certificate is refused', async () => {
  const creds = temporary({ scopes: ['auth:current-scopes'] });
  const cert = JSON.parse(creds.certificate!);
  cert.scopes = ['*'];
  await assert.rejects(authAs({ ...creds, certificate: JSON.stringify(cert) }).currentScopes(), fails(401, 'AuthenticationFailed'));
  const resigned = { ...JSON.parse(creds.certificate!), signature: Buffer.alloc(32).toString('base64') };
  await assert.rejects(authAs({ ...creds, certificate: JSON.stringify(resigned) }).currentScopes(),
    fails(401, 'AuthenticationFailed', /signature/));
});

test('an issuer cannot hand out scopes it does not have', async () => {
  const creds = temporary({ scopes: ['auth:current-scopes', 'secrets:get:prod'] });
  await assert.rejects(authAs(creds).currentScopes(), fails(401, 'AuthenticationFailed', /issuer/));
});

test('named temporary credentials need auth:create-client:<name> and report that name', async () => {
  const named = temporary({ clientId: 'issuer/named-1', scopes: ['work:x'] });
  assert.equal(named.clientId, 'issuer/named-1');
  // The request authenticates as the named client; the 403 names it.
  await assert.rejects(authAs(named).currentScopes(), fails(403, 'InsufficientScopes', /Client ID issuer\/named-1 /));
  const unnamable = temporary({ clientId: 'someone-else', scopes: ['auth:current-scopes'] });
  await assert.rejects(authAs(unnamable).currentScopes(), fails(401, 'AuthenticationFailed', /auth:create-client:someone-else/));
});

test('authorizedScopes narrow what a request may do', async () => {
  const narrowed = authAs(issuer, { authorizedScopes: ['auth:current-scopes', 'work:only-this'] });
  assert.deepEqual((await narrowed.currentScopes()).scopes, ['auth:current-scopes', 'work:only-this']);
  const withRole = authAs(issuer, { authorizedScopes: ['auth:current-scopes', 'assume:temp-role'] });
  assert.deepEqual((await withRole.currentScopes()).scopes, ['assume:temp-role', 'auth:current-scopes', 'from:role']);
  const tooWide = authAs(issuer, { authorizedScopes: ['auth:current-scopes', 'secrets:*'] });
  await assert.rejects(tooWide.currentScopes(), fails(401, 'AuthenticationFailed', /authorizedScopes/));
  const onTemporary = authAs(temporary({ scopes: ['auth:current-scopes', 'work:*'] }), { authorizedScopes: ['auth:current-scopes'] });
  assert.deepEqual((await onTemporary.currentScopes()).scopes, ['auth:current-scopes']);
});

test('a bewit URL works with plain fetch; a tampered one is 401', async () => {
  const api = authAs(issuer);
  const url: string = api.buildSignedUrl(api.currentScopes);
  const res = await fetch(url);
  assert.equal(res.status, 200);
  const body = await res.json();
  assertSchema('scopeset', body);
  assert.ok(body.scopes.includes('work:*'));

  const other = authAs({ ...issuer, accessToken: 'x'.repeat(44) }).buildSignedUrl(api.currentScopes);
  const bad = await fetch(other);
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).code, 'AuthenticationFailed');

  const both = await fetch(url, { headers: { authorization: 'Hawk id="x", ts="1", nonce="n", mac="m"' } });
  assert.equal(both.status, 401, 'a bewit and an Authorization header together are refused');
});

test('a malformed Authorization header is 401 with a JSON error body', async () => {
  for (const header of ['Hawk garbage', 'Bearer abc', 'Hawk id="issuer/main"']) {
    const res = await fetch(`${deployment.rootUrl}/api/auth/v1/scopes/current`, { headers: { authorization: header } });
    assert.equal(res.status, 401, header);
    const body = await res.json();
    assert.equal(body.code, 'AuthenticationFailed');
    assert.equal(typeof body.message, 'string');
  }
});

test('testAuthenticate checks the tester client with the given scopes', async () => {
  const tester = authAs({ clientId: 'tester', accessToken: 'no-secret' });
  const ok = await tester.testAuthenticate({ clientScopes: ['test:*'], requiredScopes: ['test:a'] });
  assertSchema('test-authenticate-response', ok);
  assert.deepEqual(ok, { clientId: 'tester', scopes: ['test:*'] });
  await assert.rejects(tester.testAuthenticate({ clientScopes: ['test:a'], requiredScopes: ['test:b'] }),
    fails(403, 'InsufficientScopes', /test:b/));
  const narrowed = authAs({ clientId: 'tester', accessToken: 'no-secret' }, { authorizedScopes: ['test:a'] });
  assert.deepEqual(await narrowed.testAuthenticate({ clientScopes: ['test:*'], requiredScopes: ['test:a'] }),
    { clientId: 'tester', scopes: ['test:a'] });
  const wrong = authAs({ clientId: 'tester', accessToken: 'wrong-secret' });
  await assert.rejects(wrong.testAuthenticate({ clientScopes: [], requiredScopes: [] }), fails(401, 'AuthenticationFailed'));
  await assert.rejects(authAs(issuer).testAuthenticate({ clientScopes: [], requiredScopes: [] }), fails(401, 'AuthenticationFailed'));
  // The tester exists only for the test endpoints.
  await assert.rejects(tester.currentScopes(), fails(401, 'AuthenticationFailed'));
});

test('testAuthenticateGet works with a bewit from the tester', async () => {
  const tester = authAs({ clientId: 'tester', accessToken: 'no-secret' });
  const res = await fetch(tester.buildSignedUrl(tester.testAuthenticateGet));
  assert.equal(res.status, 200);
  const body = await res.json();
  assertSchema('test-authenticate-response', body);
  assert.deepEqual(body, { clientId: 'tester', scopes: ['test:*', 'auth:create-client:test:*'] });
  const named = taskcluster.createTemporaryCredentials({
    clientId: 'test:named', scopes: ['test:authenticate-get'], expiry: taskcluster.fromNow('10 minutes'),
    credentials: { clientId: 'tester', accessToken: 'no-secret' },
  });
  assert.deepEqual(await authAs(named).testAuthenticateGet(), { clientId: 'test:named', scopes: ['test:authenticate-get'] });
});

test('authenticateHawk verifies a signature made for another service', async () => {
  const resource = '/some/api/thing?x=1';
  const { header } = Hawk.client.header(`http://service.example:8080${resource}`, 'GET', {
    credentials: { id: issuer.clientId, key: issuer.accessToken, algorithm: 'sha256' },
  });
  const ok = await root.authenticateHawk({ method: 'get', resource, host: 'service.example', port: 8080, authorization: header });
  assertSchema('authenticate-hawk-response', ok);
  assert.equal(ok.status, 'auth-success');
  assert.equal(ok.clientId, 'issuer/main');
  assert.ok(ok.scopes.includes('from:role'));
  const moved = await root.authenticateHawk({ method: 'get', resource, host: 'service.example', port: 9090, authorization: header });
  assertSchema('authenticate-hawk-response', moved);
  assert.equal(moved.status, 'auth-failed');
  const none = await root.authenticateHawk({ method: 'get', resource, host: 'service.example', port: 8080 });
  assert.equal(none.status, 'no-auth');
  assert.ok(none.scopes.includes('queue:get-artifact:public/*'), 'no credentials means the anonymous role');
  // The tester is not a real client, whatever path is being authenticated.
  const testPath = '/api/auth/v1/test-authenticate';
  const tester = Hawk.client.header(`http://service.example:8080${testPath}`, 'POST', {
    credentials: { id: 'tester', key: 'no-secret', algorithm: 'sha256' },
  });
  const refused = await root.authenticateHawk({ method: 'post', resource: testPath, host: 'service.example', port: 8080, authorization: tester.header });
  assert.equal(refused.status, 'auth-failed');
});

test('insufficient scopes are 403 naming the missing scope', async () => {
  const api = authAs(issuer);
  await assert.rejects(api.createRole('x', { description: 'x', scopes: [] }), (err: any) => {
    assert.equal(err.statusCode, 403);
    assert.equal(err.code, 'InsufficientScopes');
    assert.match(err.message, /auth:create-role:x/);
    assert.match(err.message, /issuer\/main/);
    return true;
  });
});
