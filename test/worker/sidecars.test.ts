// Sidecar features end to end: balrogVPNProxy (a preset: the operator names only the image)
// with a locally built stand-in (taskenv_sidecar: busybox httpd answering 401, as the VPN
// proxy does once up), an operator-defined sidecar with its own alias and scope, a sidecar
// beside taskclusterProxy on one network, and the ways a sidecar cannot start (no scope,
// readiness never reached, image missing), each leaving nothing behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';
import { LABEL_TASK_ID } from '../../lib/docker/labels.ts';

const STAND_IN = 'taskenv_sidecar:latest';
const HTTPD = ['httpd', '-f', '-p', '80', '-h', '/www', '-c', '/etc/httpd.conf'];

let h: WorkerHarness;
before(async () => {
  h = await WorkerHarness.start({
    config: {
      capacity: 2,
      sidecars: {
        balrogVPNProxy: { image: STAND_IN, command: HTTPD },
        // never answers: readiness shortened so the test does not wait 15 s
        balrogStageVPNProxy: { image: STAND_IN, command: ['sleep', '600'], readiness: { port: 80, status: 401, tries: 3, intervalMs: 200 } },
        echoService: { image: STAND_IN, command: HTTPD, alias: 'echo', requiredScope: 'project:test:echo-sidecar', readiness: { port: 80, status: 401 } },
        ghost: { image: 'taskenv_no_such_image:latest' },
      },
    },
  });
});
after(async () => { await h?.stop(); });

const engine = testEngine();

async function leftovers(taskId: string): Promise<string[]> {
  const containers = (await engine.listOwnedContainers(h.config.workerId)).filter((c) => c.labels[LABEL_TASK_ID] === taskId).map((c) => `container ${c.name}`);
  const networks = (await engine.listOwnedNetworks(h.config.workerId)).filter((n) => n.labels[LABEL_TASK_ID] === taskId).map((n) => `network ${n.name}`);
  return [...containers, ...networks];
}

const status = (host: string) => `wget -S -q -O /dev/null http://${host}/ 2>&1 | grep -o "HTTP/1.[01] [0-9]*" | tail -1 | sed 's/^/${host}: /'`;

test('balrogVPNProxy: the sidecar answers as balrog before the task starts, and is gone after the run', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', status('balrog')], maxRunTime: 60, features: { balrogVPNProxy: true } },
    { scopes: ['docker-worker:feature:balrogVPNProxy'] });
  const result = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(result.state, 'completed', log);
  assert.match(log, /^balrog: HTTP\/1\.[01] 401\r?$/m);
  const sidecar = h.capture.events.find((e) => e.message === 'task timings' && e.taskId === taskId)?.ms as Record<string, number> | undefined;
  assert.ok(sidecar?.balrogVPNProxyReady !== undefined, 'the sidecar was ready before the task ran');
  assert.deepEqual(await leftovers(taskId), []);
});

test('without docker-worker:feature:balrogVPNProxy the task is refused, naming the scope', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60, features: { balrogVPNProxy: true } });
  const result = await h.waitForResolution(taskId);
  assert.equal(result.state, 'exception');
  assert.equal(result.runs[0]!.reasonResolved, 'malformed-payload');
  assert.match(await h.taskLog(taskId), /payload\.features\.balrogVPNProxy needs the scope docker-worker:feature:balrogVPNProxy/);
  assert.deepEqual(await leftovers(taskId), []);
});

test('an operator-defined sidecar with its own alias and scope, beside taskclusterProxy on the one task network', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS, maxRunTime: 60, features: { echoService: true, taskclusterProxy: true },
    command: ['/bin/sh', '-c', `${status('echo')}\nwget -q -O - "$TASKCLUSTER_PROXY_URL/api/queue/v1/ping" | grep -q alive && echo proxy-alive`],
  }, { scopes: ['project:test:echo-sidecar'] });
  const result = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(result.state, 'completed', log);
  assert.match(log, /^echo: HTTP\/1\.[01] 401\r?$/m);
  assert.match(log, /^proxy-alive\r?$/m);
  assert.deepEqual(await leftovers(taskId), []);
});

test('a sidecar that never becomes ready fails the task with a sentence naming the feature; nothing is left', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo should-not-run'], maxRunTime: 60, features: { balrogStageVPNProxy: true } },
    { scopes: ['docker-worker:feature:balrogStageVPNProxy'] });
  const result = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(result.state, 'exception', log);
  assert.equal(result.runs[0]!.reasonResolved, 'internal-error');
  assert.match(log, /The balrogStageVPNProxy feature sidecar did not become ready: port 80 did not answer with status 401 after 3 tries 0\.2 s apart \(last: [^)]+\); check the worker configuration sidecars\.balrogStageVPNProxy \(image taskenv_sidecar:latest\)\./);
  assert.doesNotMatch(log, /should-not-run/);
  assert.deepEqual(await leftovers(taskId), []);
});

test('a sidecar whose image is not on the host fails the task saying so', async () => {
  const taskId = await h.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60, features: { ghost: true } }, { scopes: ['docker-worker:feature:ghost'] });
  const result = await h.waitForResolution(taskId);
  const log = await h.taskLog(taskId);
  assert.equal(result.state, 'exception', log);
  assert.match(log, /The ghost feature could not start its sidecar: the image taskenv_no_such_image:latest is not on this host \(sidecar images are not pulled: load it on the host\); check the worker configuration sidecars\.ghost/);
  assert.deepEqual(await leftovers(taskId), []);
});
