// payload.encryptedEnv through real tasks: the worker decrypts each entry with its OpenPGP key
// (found, as a task author finds it, with `worker keys --openpgp`), the container sees the
// values, and no value shows in the live log, the backing log, the bulk log or the worker's own
// log, however the task prints it (split across writes, a character at a time, base64, line by
// line). Every docker-worker check refuses the run with `secret data violation -- <reason>;
// incidentId: <uuid>` (exception/malformed-payload) and the same incident id in the worker log;
// an entry encrypted to another key, or not OpenPGP at all, is refused in words.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as openpgp from 'openpgp';
import taskcluster from 'taskcluster-client';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS } from '../support/docker.ts';
import { encryptEnvVariable, readPublicKey } from '../../lib/crypto/encrypted-env.ts';
import { maskedForms } from '../../lib/log/secret-masker.ts';

let h: WorkerHarness;
let publicKey: openpgp.Key;
const workerBin = path.resolve(import.meta.dirname, '../../bin/worker');

before(async () => {
  h = await WorkerHarness.start({ config: { capacity: 4 } });
  // The key a task author encrypts to: what `worker keys --openpgp` prints for this worker.
  const armored = await new Promise<string>((resolve, reject) => {
    execFile(workerBin, ['keys', '--state', h.stateDir, '--openpgp'], (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
  publicKey = await readPublicKey(armored);
});
after(async () => { await h?.stop(); });

const HOUR = 3600_000;
/** Printed plainly, in two writes, a character at a time and base64-encoded. */
const SECRET_A = 'Tr0ub4dor&3-correct-horse-battery';
/** Two lines and non-ASCII text, printed with echo (the TTY makes \n into \r\n) and line by line. */
const SECRET_B = 'first line of the private key\nsecond: "quoted" $x ünïcødé';

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function entry(taskId: string, name: string, value: string, times: { start?: number; end?: number } = {}): Promise<string> {
  const now = Date.now();
  return encryptEnvVariable(publicKey, { taskId, name, value, startTime: times.start ?? now - HOUR, endTime: times.end ?? now + HOUR });
}

/** Any JSON, encrypted as an entry (for messages `worker encrypt-env` would never make). */
async function rawEntry(content: unknown, key: openpgp.Key = publicKey): Promise<string> {
  const message = await openpgp.createMessage({ text: JSON.stringify(content) });
  return Buffer.from(await openpgp.encrypt({ message, encryptionKeys: key, format: 'binary' })).toString('base64');
}

/** The live log as the live log server streams it while the task runs (to its end). */
async function liveLogWhileRunning(taskId: string): Promise<string> {
  await h.waitForRunning(taskId);
  const url = h.queue.buildSignedUrl(h.queue.getArtifact, taskId, 0, 'public/logs/live.log') as string;
  for (;;) {
    const redirect = await fetch(url, { redirect: 'manual' });
    await redirect.body?.cancel();
    const location = redirect.headers.get('location') ?? '';
    if (redirect.status === 303 && location.startsWith(`http://127.0.0.1:${h.worker!.liveLogs.port}/log/`)) {
      const res = await fetch(location);
      assert.equal(res.status, 200);
      return res.text();
    }
    const { status } = await h.queue.status(taskId);
    assert.equal(status.state, 'running', `the task ended before its live log could be read (${redirect.status} ${location})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function assertNoSecret(where: string, text: string): void {
  for (const secret of [SECRET_A, SECRET_B]) {
    for (const form of maskedForms(secret)) assert.ok(!text.includes(form), `${where} shows ${JSON.stringify(form)}`);
  }
  // Nor any part of the secrets long enough to be recognised.
  for (const part of ['correct-horse', 'Tr0ub4dor', 'private key', 'ünïcødé']) assert.ok(!text.includes(part), `${where} shows ${JSON.stringify(part)}`);
}

test('decrypted variables reach the container and never show in the live, backing, bulk or worker log', async () => {
  const taskId = taskcluster.slugid();
  const script = [
    'sleep 2',
    'echo "sha-a $(printf %s "$SECRET_A" | sha256sum)"',
    'echo "sha-b $(printf %s "$SECRET_B" | sha256sum)"',
    'echo "len-a ${#SECRET_A}"',
    'echo "plain: $SECRET_A"',
    // Two writes with a pause: the secret straddles two chunks of output.
    'printf "split: %s" "${SECRET_A:0:12}"; sleep 1; printf "%s\\n" "${SECRET_A:12}"',
    // A character at a time.
    'printf "chars: "; i=0; while [ $i -lt ${#SECRET_A} ]; do printf %s "${SECRET_A:$i:1}"; usleep 20000; i=$((i+1)); done; echo',
    'echo "base64: $(printf %s "$SECRET_A" | base64)"',
    'echo "base64-prefixed: $(printf "xy%s" "$SECRET_A" | base64)"',
    'echo "multi: $SECRET_B"',
    'echo "first: $(echo "$SECRET_B" | head -1)"',
    'echo "plain env: $PLAIN"',
    'echo done printing',
    'sleep 1', // see allow-ptrace.test.ts: output printed just before the exit may not be followed
  ].join('\n');
  await h.submit({
    image: TASKENV_PASS, command: ['/bin/sh', '-c', script], maxRunTime: 120,
    env: { PLAIN: 'not secret at all' },
    encryptedEnv: [await entry(taskId, 'SECRET_A', SECRET_A), await entry(taskId, 'SECRET_B', SECRET_B)],
    features: { bulkLog: true },
  }, {}, taskId);
  const live = await liveLogWhileRunning(taskId);
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'completed', await h.taskLog(taskId));

  const backing = await h.artifact(taskId, 0, 'public/logs/live_backing.log');
  assert.equal(backing.status, 200);
  const bulkUrl = h.queue.buildSignedUrl(h.queue.getArtifact, taskId, 0, 'public/logs/terminal_bulk.log.gz') as string;
  const bulkRes = await fetch(bulkUrl, { headers: { 'accept-encoding': 'identity' } });
  assert.equal(bulkRes.status, 200);
  const bulk = gunzipSync(Buffer.from(await bulkRes.arrayBuffer())).toString('utf8');
  assert.equal(bulk, backing.text, 'the bulk log is the backing log');

  // The container saw the exact values (their hashes and length are no secrets).
  assert.match(backing.text, new RegExp(`^sha-a ${sha256(SECRET_A)}  -\\r?$`, 'm'));
  assert.match(backing.text, new RegExp(`^sha-b ${sha256(SECRET_B)}  -\\r?$`, 'm'));
  assert.match(backing.text, new RegExp(`^len-a ${SECRET_A.length}\\r?$`, 'm'));
  assert.match(backing.text, /^plain env: not secret at all\r?$/m);
  for (const [where, text] of [['the live log', live], ['the backing log', backing.text], ['the bulk log', bulk]] as const) {
    assert.match(text, /^done printing\r?$/m, `${where} is complete`);
    assertNoSecret(where, text);
    for (const label of ['plain', 'split', 'chars', 'base64', 'first']) {
      assert.match(text, new RegExp(`^${label}: .*\\[\\*{5}\\]`, 'm'), `${where}: the ${label} line is masked`);
    }
    assert.match(text, /^multi: \[\*{5}\]\r?$/m, `${where}: the two-line secret is masked whole`);
  }
  assertNoSecret('the worker log', JSON.stringify(h.capture.events));
});

interface Violation { name: string; payload: (taskId: string) => Promise<Record<string, unknown>>; reason: string; detail: RegExp }

const base = { image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo should not run'], maxRunTime: 60 };
const VIOLATIONS: Violation[] = [
  {
    name: 'a reserved name (TASK_ID)', reason: 'an environment variable conflicts with an existing environment variable',
    payload: async (taskId) => ({ ...base, encryptedEnv: [await entry(taskId, 'TASK_ID', 'overridden-task-id')] }),
    detail: /the environment variable \(TASK_ID\) conflicts with a reserved environment variable/,
  },
  {
    name: 'a name also in payload.env', reason: 'an environment variable has been duplicated in the task payload',
    payload: async (taskId) => ({ ...base, env: { TOKEN: 'plain' }, encryptedEnv: [await entry(taskId, 'TOKEN', 'secret-value-1')] }),
    detail: /the environment variable \(TOKEN\) has been duplicated in the task payload/,
  },
  {
    name: 'a message version other than 1', reason: 'the version of the message is not supported',
    payload: async (taskId) => ({ ...base, encryptedEnv: [await rawEntry({ messageVersion: 2, taskId, startTime: Date.now() - HOUR, endTime: Date.now() + HOUR, name: 'TOKEN', value: 'secret-value-2' })] }),
    detail: /the version of the message \(2\) for TOKEN is not supported/,
  },
  {
    name: "another task's id", reason: 'the taskId of the env payload does not match the taskId of the task',
    payload: async () => ({ ...base, encryptedEnv: [await entry('fNS8Ge0hQ5y2TPGDCiQmLQ', 'TOKEN', 'secret-value-3')] }),
    detail: /the taskId of env payload \("fNS8Ge0hQ5y2TPGDCiQmLQ"\) for TOKEN does not match taskId of task/,
  },
  {
    name: 'a start time in the future', reason: 'the start time in the env payload is in the future',
    payload: async (taskId) => ({ ...base, encryptedEnv: [await entry(taskId, 'TOKEN', 'secret-value-4', { start: Date.now() + HOUR })] }),
    detail: /the start time date in the env payload for TOKEN is in the future/,
  },
  {
    name: 'an end time in the past', reason: 'the end time in the env payload is in the past',
    payload: async (taskId) => ({ ...base, encryptedEnv: [await entry(taskId, 'TOKEN', 'secret-value-5', { start: Date.now() - 2 * HOUR, end: Date.now() - HOUR })] }),
    detail: /the end time in the env payload for TOKEN is in the past/,
  },
];

test("each of docker-worker's checks refuses the run with a secret data violation and an incident id in both logs", async () => {
  const submitted = await Promise.all(VIOLATIONS.map(async (v) => {
    const taskId = taskcluster.slugid();
    await h.submit(await v.payload(taskId), {}, taskId);
    return { ...v, taskId };
  }));
  for (const v of submitted) {
    const status = await h.waitForResolution(v.taskId);
    assert.equal(status.state, 'exception', v.name);
    assert.equal(status.runs[0]!.reasonResolved, 'malformed-payload', v.name);
    assert.equal(status.runs.length, 1, v.name);
    const log = await h.taskLog(v.taskId);
    const line = new RegExp(`^\\[taskcluster:error\\] secret data violation -- ${v.reason.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}; incidentId: ([0-9a-f-]{36})$`, 'm').exec(log);
    assert.ok(line, `${v.name}: the task log has the violation line:\n${log}`);
    assert.doesNotMatch(log, /should not run|=== Task Starting ===/, v.name);
    assert.doesNotMatch(log, /secret-value|overridden-task-id/, `${v.name}: the value is never echoed`);
    const events = h.events('secret data violation', v.taskId);
    assert.equal(events.length, 1, v.name);
    assert.equal(events[0]!.incidentId, line[1], `${v.name}: the same incident id in the worker log`);
    assert.match(String(events[0]!.detail), v.detail, v.name);
    assert.match(String(events[0]!.detail), new RegExp(`incidentId: ${line[1]}$`), v.name);
  }
  assertNoSecret('the worker log', JSON.stringify(h.capture.events));
  assert.ok(!JSON.stringify(h.capture.events).includes('secret-value'), 'no value in the worker log');
});

test('an entry encrypted to another key, or not OpenPGP at all, is refused in words (malformed-payload)', async () => {
  const { publicKey: otherArmored } = await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'another worker' }], format: 'armored' });
  const other = await openpgp.readKey({ armoredKey: otherArmored });
  const cases = [
    { content: async (taskId: string) => [await entry(taskId, 'FINE', 'fine-value-1'), await rawEntry({ messageVersion: 1, taskId, startTime: Date.now() - HOUR, endTime: Date.now() + HOUR, name: 'TOKEN', value: 'secret-value-6' }, other)],
      line: /^\[taskcluster:error\] encryptedEnv entry 2 of 2 was not encrypted to this worker's key\. Encrypt the value again with this worker pool's public key \(`worker keys --openpgp` prints it; `worker encrypt-env` encrypts\)\.$/m },
    { content: async () => ['d2NvbmZpZGVudGlhbA=='],
      line: /^\[taskcluster:error\] encryptedEnv entry 1 of 1 is not an OpenPGP message\. /m },
    { content: async (taskId: string) => [(await entry(taskId, 'TOKEN', 'secret-value-7')).slice(0, 120)],
      line: /^\[taskcluster:error\] encryptedEnv entry 1 of 1 (is not an OpenPGP message|cannot be decrypted \(the message is damaged or truncated\))\. /m },
  ];
  const submitted = await Promise.all(cases.map(async (c) => {
    const taskId = taskcluster.slugid();
    await h.submit({ ...base, encryptedEnv: await c.content(taskId) }, {}, taskId);
    return { ...c, taskId };
  }));
  for (const c of submitted) {
    const status = await h.waitForResolution(c.taskId);
    assert.equal(status.state, 'exception');
    assert.equal(status.runs[0]!.reasonResolved, 'malformed-payload');
    const log = await h.taskLog(c.taskId);
    assert.match(log, c.line, log);
    assert.doesNotMatch(log, /should not run|secret-value|fine-value/);
    assert.equal(h.events('unreadable encryptedEnv', c.taskId).length, 1);
  }
});
