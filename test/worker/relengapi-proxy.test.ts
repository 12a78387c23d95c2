// relengAPIProxy end to end, against a small fake RelengAPI the test serves on loopback: the
// task reaches it as http://relengapi/ with a temporary token minted for exactly the
// permissions its docker-worker:relengapi-proxy:<permission> scopes name, never the worker's
// own token; a RelengAPI that refuses to mint fails the task with a sentence saying what to
// check, leaving nothing behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';
import { LABEL_TASK_ID } from '../../lib/docker/labels.ts';

const ISSUING_TOKEN = 'worker-issuing-token-0123456789';
interface Minted { permissions: string[]; typ: string; expires: string }
const minted: Minted[] = [];
let refuseMinting = false;
let relengapi: http.Server;
let h: WorkerHarness;

before(async () => {
  relengapi = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const auth = req.headers.authorization ?? '';
    if (req.method === 'POST' && req.url === '/tokenauth/tokens') {
      if (refuseMinting || auth !== `Bearer ${ISSUING_TOKEN}`) return void res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":{"code":403,"description":"Forbidden"}}');
      const request = JSON.parse(body) as Minted;
      minted.push(request);
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result: { token: `tmp-token-${minted.length}`, typ: 'tmp' } }));
    }
    if (!auth.startsWith('Bearer tmp-token-')) return void res.writeHead(401).end('no token');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: req.method, path: req.url, authorization: auth, body }));
  });
  await new Promise<void>((resolve) => relengapi.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(relengapi.address() as AddressInfo).port}`;
  h = await WorkerHarness.start({ config: { 'relengAPI.url': url, 'relengAPI.token': ISSUING_TOKEN } });
});
after(async () => {
  await h?.stop();
  await new Promise((resolve) => relengapi?.close(resolve));
});

const engine = testEngine();
async function leftovers(taskId: string): Promise<string[]> {
  const containers = (await engine.listOwnedContainers(h.config.workerId)).filter((c) => c.labels[LABEL_TASK_ID] === taskId).map((c) => c.name);
  const networks = (await engine.listOwnedNetworks(h.config.workerId)).filter((n) => n.labels[LABEL_TASK_ID] === taskId).map((n) => n.name);
  return [...containers, ...networks];
}

test('the task reaches RelengAPI as http://relengapi/ with a temporary token for its own permissions', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS, maxRunTime: 60, features: { relengAPIProxy: true },
    command: ['/bin/sh', '-c', 'wget -q -O - "http://relengapi/tooltool/sha512/abc?x=1"; echo; wget -q -O - --post-data "hello" "http://relengapi/treestatus/trees"; echo; env | grep -c worker-issuing-token || true'],
  }, { scopes: ['docker-worker:relengapi-proxy:tooltool.download.public', 'docker-worker:relengapi-proxy:tooltool.download.internal', 'queue:other'] });
  const status = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(status.state, 'completed', log);
  assert.match(log, /"method":"GET","path":"\/tooltool\/sha512\/abc\?x=1","authorization":"Bearer tmp-token-\d+"/);
  assert.match(log, /"method":"POST","path":"\/treestatus\/trees","authorization":"Bearer tmp-token-\d+","body":"hello"/);
  assert.doesNotMatch(log, /worker-issuing-token-0123456789/);
  const request = minted.at(-1)!;
  assert.equal(request.typ, 'tmp');
  assert.deepEqual(request.permissions, ['tooltool.download.internal', 'tooltool.download.public']);
  const lifetime = Date.parse(request.expires) - Date.now();
  assert.ok(lifetime > 0 && lifetime <= 10 * 60_000, `the token expires within 10 minutes (${request.expires})`);
  assert.deepEqual(await leftovers(taskId), []);
});

test('a RelengAPI that will not mint a token fails the task with a sentence saying what to check', async () => {
  refuseMinting = true;
  try {
    const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo should-not-run'], maxRunTime: 60, features: { relengAPIProxy: true } },
      { scopes: ['docker-worker:relengapi-proxy:tooltool.upload'] });
    const status = await h.waitForResolution(taskId);
    const log = await h.taskLog(taskId);
    assert.equal(status.state, 'exception', log);
    assert.match(log, /The relengAPIProxy feature could not get a temporary RelengAPI token for the permissions \["tooltool\.upload"\]: RelengAPI answered 403 to the token request: .*\. Check relengAPI\.url and that relengAPI\.token may issue temporary tokens \(base\.tokens\.tmp\.issue\) with those permissions\./);
    assert.doesNotMatch(log, /should-not-run/);
    assert.deepEqual(await leftovers(taskId), []);
  } finally {
    refuseMinting = false;
  }
});

test('with taskclusterProxy too: one gateway, each proxy found by its name', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS, maxRunTime: 60, features: { relengAPIProxy: true, taskclusterProxy: true },
    command: ['/bin/sh', '-c', 'wget -q -O - http://relengapi/ping; echo; wget -q -O - "$TASKCLUSTER_PROXY_URL/api/queue/v1/ping"; echo; grep -E " (taskcluster|relengapi)$" /etc/hosts | cut -f1 | sort -u | wc -l'],
  }, { scopes: ['docker-worker:relengapi-proxy:tooltool.download.public'] });
  const status = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(status.state, 'completed', log);
  assert.match(log, /"path":"\/ping","authorization":"Bearer tmp-token-\d+"/);
  assert.match(log, /"alive": ?true/);
  assert.deepEqual(await leftovers(taskId), []);
});
