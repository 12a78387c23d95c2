// The tests' own schema check (schema-check.ts): its reference data is the official file, and
// it finds what it is meant to find.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import { startEmbedded } from '../../lib/embedded/server.ts';
import { silentLog } from '../../lib/log/worker-log.ts';
import { checkSchemas, entryFor, problemsOf, referencesFile, type Exchange } from './schema-check.ts';

const official = path.resolve(import.meta.dirname, '../../../shared/reference/taskcluster-references.json');

test('schemas/taskcluster/references.json is a verbatim subset of the official references', { skip: !existsSync(official) && 'no shared/reference here (a clean checkout)' }, () => {
  const ours: { filename: string; content: unknown }[] = JSON.parse(readFileSync(referencesFile, 'utf8'));
  const theirs = new Map<string, unknown>((JSON.parse(readFileSync(official, 'utf8')) as { filename: string; content: unknown }[]).map((f) => [f.filename, f.content]));
  for (const f of ours) {
    assert.ok(theirs.has(f.filename), `${f.filename} is in the official file`);
    assert.deepEqual(f.content, theirs.get(f.filename), `${f.filename} is unchanged`);
  }
  for (const [name] of theirs) {
    if (/^(references|schemas)\/(auth|queue|object|index|purge-cache)\//.test(name) && /\/api\.json$|^schemas\//.test(name)) {
      assert.ok(ours.some((f) => f.filename === name), `${name} (a service the deployment serves) is in the copy`);
    }
  }
});

const exchange = (x: Partial<Exchange> & { method: string; url: string }): Exchange => ({
  requestBody: Buffer.alloc(0), status: 200, responseBody: Buffer.alloc(0), ...x,
});
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const errorBody = json({ code: 'ResourceNotFound', message: 'gone', requestInfo: { method: 'GET' } });
const taskId = 'fN1SbArXTPSVFNUvaOlinQ';

test('the check matches routes the way the references declare them', () => {
  assert.equal(entryFor('GET', `/api/queue/v1/task/${taskId}/status`)?.entry.name, 'status');
  assert.equal(entryFor('GET', `/api/queue/v1/task/${taskId}/runs/0/artifacts/public/a/b.txt`)?.entry.name, 'getArtifact');
  assert.equal(entryFor('GET', `/api/queue/v1/task/${taskId}/artifacts/public%2Fa`)?.entry.name, 'getLatestArtifact');
  assert.equal(entryFor('GET', '/api/purge-cache/v1/purge-cache/list')?.entry.name, 'allPurgeRequests');
  assert.equal(entryFor('GET', '/api/index/v1/task/a.b/artifacts/public/x')?.entry.name, 'findArtifactFromTask');
  assert.equal(entryFor('DELETE', '/api/queue/v1/ping'), undefined);
});

test('the check finds wrong answers, accepted bad requests and malformed error bodies', () => {
  const cases: [string, Exchange, RegExp | undefined][] = [
    ['a good answer', exchange({ method: 'GET', url: '/api/auth/v1/scopes/current', responseBody: json({ scopes: ['a'] }) }), undefined],
    ['an answer breaking the output schema', exchange({ method: 'GET', url: '/api/auth/v1/scopes/current', responseBody: json({ scopes: 'a' }) }),
      /does not match v1\/scopeset\.json/],
    ['an error body without requestInfo', exchange({ method: 'GET', url: `/api/queue/v1/task/${taskId}`, status: 404, responseBody: json({ code: 'X', message: 'm' }) }),
      /not \{code, message, requestInfo\}/],
    ['a good error body', exchange({ method: 'GET', url: `/api/queue/v1/task/${taskId}`, status: 404, responseBody: errorBody }), undefined],
    ['a bad request accepted', exchange({
      method: 'POST', url: '/api/queue/v1/claim-work/a/b', requestBody: json({ workerGroup: 'g', tasks: 1 }), responseBody: json({ tasks: [] }),
    }), /not a refusal, to a body its input schema/],
    ['a bad request refused', exchange({
      method: 'POST', url: '/api/queue/v1/claim-work/a/b', requestBody: json({ workerGroup: 'g', tasks: 1 }), status: 400,
      responseBody: json({ code: 'InputValidationError', message: 'm', requestInfo: {} }),
    }), undefined],
    ['a missing body accepted', exchange({ method: 'POST', url: '/api/auth/v1/scopes/expand', responseBody: json({ scopes: [] }) }), /without the body/],
    ['an undeclared query parameter accepted', exchange({ method: 'GET', url: `/api/queue/v1/task/${taskId}?x=1`, responseBody: json({}) }), /undeclared query parameter x/],
    ['an unknown route answered', exchange({ method: 'GET', url: '/api/queue/v1/nope', responseBody: json({}) }), /no reference entry/],
    ['a 303 artifact body breaking get-artifact-response', exchange({
      method: 'GET', url: `/api/queue/v1/task/${taskId}/runs/0/artifacts/public/x`, status: 303, responseBody: json({ url: 'https://example.com/x' }),
    }), /does not match v1\/get-artifact-response\.json/],
    ['a 424 without a reason', exchange({
      method: 'GET', url: `/api/queue/v1/task/${taskId}/artifacts/public/x`, status: 424, responseBody: json({ message: 'm' }),
    }), /a 424 body is \{reason, message\}/],
    ['a 424 from a route that has none', exchange({ method: 'GET', url: `/api/queue/v1/task/${taskId}`, status: 424, responseBody: json({ reason: 'r', message: 'm' }) }),
      /queue\.task answered 424/],
  ];
  for (const [what, x, expected] of cases) {
    const problems = problemsOf(x);
    if (expected) assert.ok(problems.some((p) => expected.test(p)), `${what}: ${JSON.stringify(problems)}`);
    else assert.deepEqual(problems, [], what);
  }
});

test('checkSchemas records what taskcluster-client sends and receives over HTTP', async () => {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'schema-check-'));
  const deployment = await startEmbedded({ stateDir, port: 0, log: silentLog });
  const check = checkSchemas(deployment.server);
  try {
    const queue = new taskcluster.Queue({ rootUrl: deployment.rootUrl, credentials: deployment.credentials, retries: 0 });
    const id = taskcluster.slugid();
    await queue.createTask(id, {
      taskQueueId: 'schema/check', created: new Date().toJSON(), deadline: taskcluster.fromNow('1 hour'), payload: {},
      metadata: { name: 'n', description: 'd', owner: 'o@example.com', source: 'https://example.com' },
    });
    await queue.status(id);
    await assert.rejects(queue.task(taskcluster.slugid()));
    assert.deepEqual(Object.fromEntries(check.seen), { 'queue.createTask': 1, 'queue.status': 1, 'queue.task': 1 });
    check.assertClean();
  } finally {
    check.stop();
    await deployment.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});
