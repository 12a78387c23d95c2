// payload.features.chainOfTrust through real tasks, checked as a verifier (scriptworker) checks
// it: the certificate's detached ed25519 signature holds with the public key `worker keys
// --ed25519` prints; every artifact it lists, certified.log included, hashes to what it says
// when downloaded; the task, ids and environment (image id, image artifact hash) are the run's.
// A tampered artifact or certificate fails the check. The legacy OpenPGP form verifies with
// the worker's OpenPGP key. The names are reserved, and a configured key that cannot be read
// stops the worker at start, naming the file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { WorkerHarness } from '../support/worker.ts';
import { TASKENV_PASS, testEngine } from '../support/docker.ts';
import { publishProducerTask, sha256File } from '../images/image-fixtures.ts';
import { localRepository } from '../../lib/images/local-name.ts';
import { openpgpVerifyCertificate, verifyCertificate } from '../../lib/crypto/chain-of-trust.ts';
import { ed25519PublicKeyFromBase64, WorkerKeyError } from '../../lib/crypto/worker-keys.ts';

const workerBin = path.resolve(import.meta.dirname, '../../bin/worker');
const engine = testEngine();
let h: WorkerHarness;
let ed25519Public: KeyObject;
let openpgpPublic: openpgp.Key;
let tmp: string;

function workerKeys(flag: '--ed25519' | '--openpgp'): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(workerBin, ['keys', '--state', h.stateDir, flag], (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'cot-test-'));
  h = await WorkerHarness.start({ config: { capacity: 2, 'chainOfTrust.openpgpSignature': true } });
  ed25519Public = ed25519PublicKeyFromBase64(await workerKeys('--ed25519'));
  openpgpPublic = await openpgp.readKey({ armoredKey: await workerKeys('--openpgp') });
});
after(async () => {
  await h?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** An artifact's bytes as a consumer downloads them (content encoding undone). */
async function download(taskId: string, name: string): Promise<Buffer> {
  const url = h.queue.buildSignedUrl(h.queue.getArtifact, taskId, 0, name) as string;
  const res = await fetch(url);
  assert.equal(res.status, 200, `${name}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

interface Certificate {
  chainOfTrustVersion: number;
  artifacts: Record<string, { sha256: string }>;
  task: unknown; taskId: string; runId: number; workerGroup: string; workerId: string;
  environment: Record<string, string>;
}

/**
 * What a verifier checks: the signature over the certificate's exact bytes, then each listed
 * artifact's sha256 against its downloaded bytes. Returns the problems found (none: trusted).
 */
async function verify(certificate: Buffer, signature: Buffer, artifacts: (name: string) => Promise<Buffer>): Promise<string[]> {
  if (!verifyCertificate(certificate, signature, ed25519Public)) return ['the signature does not hold'];
  const problems: string[] = [];
  const cert = JSON.parse(certificate.toString('utf8')) as Certificate;
  for (const [name, { sha256 }] of Object.entries(cert.artifacts)) {
    const actual = createHash('sha256').update(await artifacts(name)).digest('hex');
    if (actual !== sha256) problems.push(`${name}: sha256 ${actual}, certificate says ${sha256}`);
  }
  return problems;
}

test('the certificate is signed, lists every artifact with its hash (certified.log included) and the run\'s environment', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS,
    command: ['/bin/sh', '-c', 'mkdir -p /out/sub && echo hello > /out/hello.txt && head -c 5000 /dev/urandom > /out/sub/random.bin && echo built && sleep 1'],
    maxRunTime: 60,
    artifacts: { 'public/hello.txt': { type: 'file', path: '/out/hello.txt' }, 'public/dir': { type: 'directory', path: '/out/sub' } },
    features: { chainOfTrust: true, bulkLog: true },
  });
  assert.equal((await h.waitForResolution(taskId)).state, 'completed', await h.taskLog(taskId));
  const listed = new Set((await h.listArtifacts(taskId)).map((a) => a.name));
  for (const name of ['public/chain-of-trust.json', 'public/chain-of-trust.json.sig', 'public/chainOfTrust.json.asc', 'public/logs/certified.log']) {
    assert.ok(listed.has(name), `${name} is published: ${[...listed].join(', ')}`);
  }
  const certificate = await download(taskId, 'public/chain-of-trust.json');
  const signature = await download(taskId, 'public/chain-of-trust.json.sig');
  assert.equal(signature.length, 64, 'a raw ed25519 signature');
  assert.deepEqual(await verify(certificate, signature, (name) => download(taskId, name)), []);

  const cert = JSON.parse(certificate.toString('utf8')) as Certificate;
  assert.equal(certificate.toString('utf8'), JSON.stringify(cert, null, 2), 'pretty JSON, as generic-worker writes it');
  assert.equal(cert.chainOfTrustVersion, 1);
  assert.deepEqual(Object.keys(cert.artifacts).sort(), [
    'public/dir/random.bin', 'public/hello.txt', 'public/logs/certified.log', 'public/logs/live_backing.log', 'public/logs/terminal_bulk.log.gz',
  ]);
  assert.equal(cert.taskId, taskId);
  assert.equal(cert.runId, 0);
  assert.equal(cert.workerGroup, h.config.workerGroup);
  assert.equal(cert.workerId, h.config.workerId);
  assert.deepEqual(cert.task, await h.queue.task(taskId), 'the full task definition');
  const imageId = execFileSync('docker', ['image', 'inspect', '--format', '{{.Id}}', TASKENV_PASS], { encoding: 'utf8' }).trim();
  assert.equal(cert.environment.imageHash, imageId, 'the image the task ran');
  assert.equal(cert.environment.publicIpAddress, h.config.host.publicIp);
  assert.match(cert.environment.privateIpAddress ?? '', /^\d+\.\d+\.\d+\.\d+$/);
  assert.equal(cert.environment.instanceType, h.config.host.instanceType);
  assert.equal(cert.environment.imageArtifactHash, undefined, 'a registry image has no artifact hash');

  // certified.log is the complete task log (footer included): the backing log's bytes.
  const certified = await download(taskId, 'public/logs/certified.log');
  assert.deepEqual(certified, await download(taskId, 'public/logs/live_backing.log'));
  assert.match(certified.toString('utf8'), /^built\r?$/m);
  assert.match(certified.toString('utf8'), /Successful task run with exit code: 0 completed in/);

  // The legacy OpenPGP form: the same certificate, cleartext-signed with the OpenPGP key.
  const asc = (await download(taskId, 'public/chainOfTrust.json.asc')).toString('utf8');
  assert.equal((await openpgpVerifyCertificate(asc, openpgpPublic)).trimEnd(), certificate.toString('utf8'));

  // Tampering is caught: one changed byte in an artifact, or in the certificate.
  const tampered = async (name: string) => {
    const bytes = await download(taskId, name);
    if (name === 'public/hello.txt') bytes[0] ^= 1;
    return bytes;
  };
  const problems = await verify(certificate, signature, tampered);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^public\/hello\.txt: sha256 [0-9a-f]{64}, certificate says /);
  const forged = Buffer.from(certificate.toString('utf8').replace(cert.artifacts['public/hello.txt']!.sha256, createHash('sha256').update('forged').digest('hex')));
  assert.deepEqual(await verify(forged, signature, (name) => download(taskId, name)), ['the signature does not hold']);
});

test('a failing task is certified too; a task without chainOfTrust publishes no certificate', async () => {
  const failing = await h.submit({ image: TASKENV_PASS, command: ['/bin/sh', '-c', 'echo failing; exit 3'], maxRunTime: 60, features: { chainOfTrust: true } });
  const plain = await h.submit({ image: TASKENV_PASS, command: ['true'], maxRunTime: 60 });
  assert.equal((await h.waitForResolution(failing)).state, 'failed');
  const certificate = await download(failing, 'public/chain-of-trust.json');
  assert.deepEqual(await verify(certificate, await download(failing, 'public/chain-of-trust.json.sig'), (name) => download(failing, name)), []);
  assert.match((await download(failing, 'public/logs/certified.log')).toString('utf8'), /Unsuccessful task run with exit code: 3/);
  assert.equal((await h.waitForResolution(plain)).state, 'completed');
  const names = (await h.listArtifacts(plain)).map((a) => a.name);
  assert.ok(!names.some((n) => /chain-of-trust|chainOfTrust|certified/.test(n)), names.join(', '));
});

test('an image from a task artifact: the certificate carries the artifact\'s sha256 as imageArtifactHash', async () => {
  const tar = path.join(tmp, 'image.tar');
  execFileSync('sh', ['-c', `docker save ${TASKENV_PASS} > "${tar}"`]);
  const producer = await publishProducerTask(h.rootUrl, h.credentials, [{ name: 'public/image.tar', file: tar }]);
  try {
    const taskId = await h.submit({ image: { type: 'task-image', taskId: producer, path: 'public/image.tar' }, command: ['true'], maxRunTime: 60, features: { chainOfTrust: true } });
    assert.equal((await h.waitForResolution(taskId)).state, 'completed', await h.taskLog(taskId));
    const certificate = await download(taskId, 'public/chain-of-trust.json');
    assert.deepEqual(await verify(certificate, await download(taskId, 'public/chain-of-trust.json.sig'), (name) => download(taskId, name)), []);
    const cert = JSON.parse(certificate.toString('utf8')) as Certificate;
    assert.equal(cert.environment.imageArtifactHash, sha256File(tar));
    assert.match(cert.environment.imageHash ?? '', /^sha256:[0-9a-f]{64}$/);
  } finally {
    const repository = localRepository({ taskId: producer, path: 'public/image.tar' });
    for (const image of await engine.listImages()) {
      for (const tag of image.repoTags.filter((t) => t.startsWith(`${repository}:`))) await engine.removeImage(tag).catch(() => undefined);
    }
  }
});

test('a payload artifact may not take a chain-of-trust name', async () => {
  const taskId = await h.submit({
    image: TASKENV_PASS, command: ['true'], maxRunTime: 60, features: { chainOfTrust: true },
    artifacts: { 'public/chain-of-trust.json': { type: 'file', path: '/etc/hostname' } },
  });
  const status = await h.waitForResolution(taskId);
  assert.equal(status.state, 'exception');
  assert.equal(status.runs[0]!.reasonResolved, 'malformed-payload');
  assert.match(await h.taskLog(taskId), /payload\.artifacts\["public\/chain-of-trust\.json"\] is an artifact the chainOfTrust feature uploads itself; rename the artifact or turn chainOfTrust off/);
});

test('a configured key file that is malformed stops the worker at start, naming the file', async () => {
  const bad = path.join(tmp, 'ed25519.key');
  writeFileSync(bad, 'not a key\n', { mode: 0o600 });
  const f = await WorkerHarness.start({ noWorker: true, config: { 'keys.ed25519PrivateKeyPath': bad } });
  try {
    await assert.rejects(f.startWorker(), (err: Error) => err instanceof WorkerKeyError && err.message.includes(bad) && /malformed/.test(err.message));
    const missing = path.join(tmp, 'absent.asc');
    const g = await WorkerHarness.start({ noWorker: true, config: { 'keys.openpgpPrivateKeyPath': missing } });
    try {
      await assert.rejects(g.startWorker(), (err: Error) => err instanceof WorkerKeyError && err.message.includes(`${missing} does not exist`));
    } finally { await g.stop(); }
  } finally { await f.stop(); }
});
