// taskclusterProxy as a task sees it, end to end against the deployment under test (embedded,
// or the real services with TASKCLUSTER_ROOT_URL): GETs (queue, legacy paths, index), POSTs
// with a body (an artifact created through the proxy, purge-cache), a 403 the service gives
// for a scope the task lacks, redirects passed through, /bewit, an unknown service, calls
// after reclaims, the per-task network (two tasks side by side reach neither each other's
// container nor each other's proxy), and a proxy that cannot start. The task's HTTP clients
// are busybox wget (GET, POST) and nc (raw requests, to see status lines and bodies).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';
import { LABEL_TASK_ID } from '../../lib/docker/labels.ts';


let h: WorkerHarness;
before(async () => { h = await WorkerHarness.start({ config: { capacity: 2 } }); });
after(async () => { await h?.stop(); });

const engine = testEngine();

/** Shell functions for the task: `call NAME wget-args...` prints `NAME <status>` then the body. */
const CALL = [
  'call() { name=$1; shift; wget -S -q -O /tmp/body "$@" 2>/tmp/err; echo "$name $(sed -n \'s/^ *HTTP\\/1\\.[01] \\([0-9]*\\).*/\\1/p\' /tmp/err | tail -1)"; cat /tmp/body; echo; }',
  // raw NAME REQUEST-LINE [BODY]: the whole answer (status line, headers, body) from nc
  'raw() { name=$1; line=$2; body=${3:-}; echo "$name:"; { printf "%s HTTP/1.0\\r\\nHost: taskcluster\\r\\nContent-Length: %s\\r\\n\\r\\n%s" "$line" "${#body}" "$body"; sleep 2; } | nc taskcluster 80; echo; echo "$name."; }',
].join('\n');

function proxyTask(script: string, extra: { env?: Record<string, string>; scopes?: string[]; maxRunTime?: number } = {}) {
  return h.submit(
    { image: TASKENV_PASS, command: ['/bin/sh', '-c', `${CALL}\n${script}`], maxRunTime: extra.maxRunTime ?? 120, env: extra.env ?? {}, features: { taskclusterProxy: true } },
    { scopes: extra.scopes ?? [], expires: taskcluster.fromNow('1 day').toISOString() },
  );
}

async function networksOf(taskId: string) {
  return (await engine.listOwnedNetworks(h.config.workerId)).filter((n) => n.labels[LABEL_TASK_ID] === taskId);
}

test('through the proxy a task reads the queue and the index, posts with a body, creates an artifact, and gets 403 for a scope it lacks', async () => {
  const pool = h.taskQueueId;
  const namespace = `project.proxies12.${h.config.workerType}`;
  const indexed = taskcluster.slugid();
  const index = new taskcluster.Index({ rootUrl: h.rootUrl, credentials: h.credentials });
  await index.insertTask(namespace, { taskId: indexed, rank: 0, data: { proxied: 'yes' }, expires: taskcluster.fromNow('1 day').toISOString() });
  const expires = taskcluster.fromNow('12 hours').toISOString();
  const reference = JSON.stringify({ storageType: 'reference', expires, contentType: 'text/plain', url: 'http://127.0.0.1/proxied-reference' });
  const taskId = await proxyTask([
    'echo "proxy-url=$TASKCLUSTER_PROXY_URL"',
    'call get-task "$TASKCLUSTER_PROXY_URL/api/queue/v1/task/$TASK_ID"',
    'call legacy-status "http://taskcluster/queue/v1/task/$TASK_ID/status"',
    'call find-task "$TASKCLUSTER_PROXY_URL/api/index/v1/task/$NAMESPACE"',
    'call purge-granted --header "Content-Type: application/json" --post-data \'{"cacheName":"granted-cache"}\' "$TASKCLUSTER_PROXY_URL/api/purge-cache/v1/purge-cache/$POOL"',
    'call purge-denied --header "Content-Type: application/json" --post-data \'{"cacheName":"other-cache"}\' "$TASKCLUSTER_PROXY_URL/api/purge-cache/v1/purge-cache/$POOL"',
    'call create-artifact --header "Content-Type: application/json" --post-data "$REFERENCE" "$TASKCLUSTER_PROXY_URL/api/queue/v1/task/$TASK_ID/runs/$RUN_ID/artifacts/public%2Fproxied%2Fref.txt"',
    'raw redirect "GET /api/queue/v1/task/$TASK_ID/runs/$RUN_ID/artifacts/public%2Fproxied%2Fref.txt"',
    'raw unknown "GET /api/nosuch/v1/ping"',
    'raw bewit "POST /bewit" "$TASKCLUSTER_ROOT_URL/api/queue/v1/task/$TASK_ID"',
    'raw credentials "PUT /credentials" \'{"clientId":"x","accessToken":"y"}\'',
  ].join('\n'), {
    env: { NAMESPACE: namespace, POOL: encodeURIComponent(pool), REFERENCE: reference },
    scopes: [
      'queue:get-task:*', 'queue:status:*', `index:find-task:${namespace}`, 'queue:get-artifact:public/proxied/*',
      'queue:create-artifact:public/proxied/*', `purge-cache:${pool}:granted-cache`,
    ],
  });
  const status = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(status.state, 'completed', log);
  assert.match(log, /^proxy-url=http:\/\/taskcluster\r?$/m);
  assert.match(log, /^get-task 200\r?\n[^]*?"name": ?"test task"/m, 'GET through /api/queue/v1');
  assert.match(log, new RegExp(`^legacy-status 200\\r?\\n[^]*?"taskId": ?"${taskId}"`, 'm'), 'GET through the legacy /queue/v1 layout');
  assert.match(log, new RegExp(`^find-task 200\\r?\\n[^]*?"taskId": ?"${indexed}"`, 'm'), 'index GET');
  assert.match(log, /^purge-granted 20[04]\r?$/m, 'POST with a body the task has the scope for');
  assert.match(log, /^purge-denied 403\r?$/m, 'the service refuses a scope the task lacks; the worker does not widen it');
  assert.match(log, /^create-artifact 200\r?$/m);
  assert.match(log, /redirect:\r?\nHTTP\/1\.1 303 /, 'the redirect reaches the task');
  assert.match(log, /redirect:[^]*?location: http:\/\/127\.0\.0\.1\/proxied-reference/i);
  assert.match(log, /unknown:\r?\nHTTP\/1\.1 404 [^]*?Unknown Taskcluster service "nosuch": the taskclusterProxy forwards requests to auth, /);
  assert.match(log, /bewit:\r?\nHTTP\/1\.1 303 [^]*?location: \S+\?bewit=/i);
  assert.match(log, /credentials:\r?\nHTTP\/1\.1 403 /);
  const artifacts = await h.listArtifacts(taskId);
  assert.equal(artifacts.find((a) => a.name === 'public/proxied/ref.txt')?.storageType, 'reference', JSON.stringify(artifacts));
  assert.deepEqual(await networksOf(taskId), [], 'the task network is gone');
});

test('a 100 MB body goes through the proxy to the service, whose answer reaches the task', async () => {
  // No Taskcluster endpoint takes 100 MB of JSON: purge-cache refuses it with an error of its
  // own (a JSON body with a code; which status depends on the deployment), which shows the
  // body went through the proxy and the answer came back.
  const taskId = await proxyTask([
    'dd if=/dev/zero of=/tmp/big bs=1M count=100 2>/dev/null',
    'size=$(wc -c < /tmp/big)',
    '{ printf "POST /api/purge-cache/v1/purge-cache/%s HTTP/1.0\\r\\nHost: taskcluster\\r\\nContent-Type: application/json\\r\\nContent-Length: %s\\r\\n\\r\\n" "$POOL" "$size"; cat /tmp/big; sleep 3; } | nc taskcluster 80 > /tmp/answer',
    'echo "sent $size"; head -c 2000 /tmp/answer',
  ].join('\n'), { env: { POOL: encodeURIComponent(h.taskQueueId) }, scopes: [`purge-cache:${h.taskQueueId}:*`] });
  const status = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(status.state, 'completed', log);
  assert.match(log, /^sent 104857600\r?$/m);
  assert.match(log, /^HTTP\/1\.1 [45]\d\d [^]*?X-Taskcluster-Endpoint: \S+\/api\/purge-cache\/v1\/purge-cache\/[^]*?"code": ?"\w+"/m, 'the service\'s own error answer');
});

test('calls made after reclaims succeed (the proxy signs with the newest credentials)', async () => {
  const short = await WorkerHarness.start({ claimTimeoutSeconds: 4, config: { 'task.reclaimMarginSeconds': 1 } });
  try {
    const pool = short.taskQueueId;
    const wait = short.deployment.claimTimeoutSeconds * 2 + 2;
    const taskId = await short.submit({
      image: TASKENV_PASS, maxRunTime: 120, features: { taskclusterProxy: true }, env: { POOL: encodeURIComponent(pool) },
      command: ['/bin/sh', '-c', `${CALL}\nsleep ${wait}\ncall late-purge --header 'Content-Type: application/json' --post-data '{"cacheName":"c"}' "$TASKCLUSTER_PROXY_URL/api/purge-cache/v1/purge-cache/$POOL"\ncall late-task "$TASKCLUSTER_PROXY_URL/api/queue/v1/task/$TASK_ID/status"`],
    }, { scopes: [`purge-cache:${pool}:c`, 'queue:status:*'] });
    const status = await short.waitForResolution(taskId);
    const log = await short.taskLog(taskId);
    assert.equal(status.state, 'completed', log);
    assert.ok(short.events('reclaimed task', taskId).length >= 2, 'the claim was renewed while the task slept');
    assert.match(log, /^late-purge 20[04]\r?$/m, log);
    assert.match(log, /^late-task 200\r?$/m);
  } finally {
    await short.stop();
  }
});

test('two tasks side by side reach neither each other\'s container nor each other\'s proxy; a plain task keeps the default network', async () => {
  const first = await proxyTask('call own "$TASKCLUSTER_PROXY_URL/api/queue/v1/ping"\nsleep 60', { maxRunTime: 90 });
  await h.waitForRunning(first);
  let network: { name: string; id: string } | undefined;
  for (let i = 0; i < 100 && !network; i++) {
    network = (await networksOf(first))[0];
    if (!network) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(network, 'the first task runs on a network of its own');
  const { gateway } = await engine.networkAddresses(network.id);
  let container: { id: string } | undefined;
  for (let i = 0; i < 100 && !container; i++) {
    container = (await engine.listOwnedContainers(h.config.workerId)).find((c) => c.labels[LABEL_TASK_ID] === first);
    if (!container) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(container, 'the first task\'s container exists');
  let containerIp = '';
  for (let i = 0; i < 50 && !containerIp; i++) {
    containerIp = (await engine.inspectContainer(container.id)).NetworkSettings.Networks[network.name]?.IPAddress ?? '';
    if (!containerIp) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(containerIp, 'the first task\'s container has an address on its network');
  const probe = [
    'if timeout 5 wget -q -O /dev/null "http://$PEER_GATEWAY/api/queue/v1/ping"; then echo peer-proxy=reached; else echo peer-proxy=refused; fi',
    'if ping -c 1 -W 2 "$PEER_IP" >/dev/null 2>&1; then echo peer-container=reached; else echo peer-container=unreachable; fi',
  ].join('\n');
  const env = { PEER_GATEWAY: gateway, PEER_IP: containerIp };
  const control = 'if ping -c 1 -W 2 "$(awk \'/taskcluster/ { print $1 }\' /etc/hosts)" >/dev/null 2>&1; then echo own-gateway=reached; fi';
  const second = await proxyTask(`${probe}\n${control}\ncall own "$TASKCLUSTER_PROXY_URL/api/queue/v1/ping"`, { env });
  const secondLog = await h.waitForResolution(second).then(() => h.taskLog(second));
  assert.match(secondLog, /^peer-proxy=refused\r?$/m, secondLog);
  assert.match(secondLog, /^peer-container=unreachable\r?$/m);
  assert.match(secondLog, /^own-gateway=reached\r?$/m, 'ping works (so the unreachable peer is the network\'s isolation)');
  assert.match(secondLog, /^own 200\r?$/m, 'its own proxy answers');
  const plain = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', `${probe}\necho "proxy-url=\${TASKCLUSTER_PROXY_URL:-none}"; grep -c taskcluster /etc/hosts || true`], maxRunTime: 60, env });
  const plainLog = await h.waitForResolution(plain).then(() => h.taskLog(plain));
  assert.match(plainLog, /^peer-proxy=refused\r?$/m, plainLog);
  assert.match(plainLog, /^proxy-url=none\r?$/m);
  assert.match(plainLog, /^0\r?$/m, 'no taskcluster host for a task without the feature');
  assert.deepEqual(await networksOf(plain), [], 'a plain task gets no network of its own');
  const refusedEvents = h.capture.events.filter((e) => e.message === 'a task proxy refused a connection from outside its task');
  assert.ok(refusedEvents.filter((e) => e.taskId === first).length >= 2, JSON.stringify(refusedEvents) + secondLog + plainLog);
  await h.queue.cancelTask(first);
  await h.waitForResolution(first);
  for (let i = 0; i < 100 && (await networksOf(first)).length; i++) await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(await networksOf(first), [], 'the cancelled task\'s network is gone');
});

test('a proxy that cannot listen fails the task with a sentence naming the feature, and leaves nothing behind', async () => {
  const squatter: Server = createServer((_req, res) => res.end('not the proxy'));
  await new Promise<void>((resolve, reject) => { squatter.once('error', reject); squatter.listen(80, '0.0.0.0', () => resolve()); });
  try {
    const taskId = await proxyTask('echo should-not-run');
    const status = await h.waitForResolution(taskId);
    const log = await h.taskLog(taskId);
    assert.equal(status.state, 'exception', log);
    assert.equal(status.runs[0]!.reasonResolved, 'internal-error');
    assert.match(log, /The taskclusterProxy feature could not listen on [\d.]+:80: something else already listens on [\d.]+:80\. Check what else listens on port 80 of this host\./);
    assert.doesNotMatch(log, /should-not-run/);
    assert.deepEqual(await networksOf(taskId), []);
    assert.deepEqual((await engine.listOwnedContainers(h.config.workerId)).filter((c) => c.labels[LABEL_TASK_ID] === taskId), []);
  } finally {
    await new Promise((resolve) => squatter.close(resolve));
  }
});
