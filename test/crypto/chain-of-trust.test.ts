// Chain of trust: the certificate holds what scriptworker reads, its ed25519 signature verifies
// with the public key `worker keys` prints, and any change to the certificate, the signature or
// an artifact it lists is caught. The legacy OpenPGP cleartext form verifies too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import {
  CHAIN_OF_TRUST_ARTIFACT_NAMES, chainOfTrustArtifacts, chainOfTrustCertificate, openpgpVerifyCertificate, sha256Hex,
  verifyCertificate, type ChainOfTrustInput,
} from '../../lib/crypto/chain-of-trust.ts';
import { ed25519PublicKeyFromBase64, loadWorkerKeys, workerKeyPaths, workerPublicKeys } from '../../lib/crypto/worker-keys.ts';

const keys = await loadWorkerKeys(workerKeyPaths({ stateDir: mkdtempSync(path.join(os.tmpdir(), 'cot-')), keys: { openpgpPrivateKeyPath: '', ed25519PrivateKeyPath: '' } }), { createDefaults: true });
const printed = workerPublicKeys(keys);
const ed25519Public = ed25519PublicKeyFromBase64(printed.ed25519Base64);

const uploaded: Record<string, Buffer> = {
  'public/build/target.tar.gz': Buffer.from('the build output'),
  'public/logs/certified.log': Buffer.from('[taskcluster 2026-12-07T03:00:00.000Z] Task ID: x\nhello\n'),
  'private/notes.txt': Buffer.from('private artifacts are listed too'),
};
const task = {
  provisionerId: 'local', workerType: 'docker-worker', schedulerId: '-', taskGroupId: 'dSlITZ4yQgmvxxAi4A8fHQ', dependencies: [], requires: 'all-completed',
  routes: [], priority: 'lowest', retries: 5, created: '2026-12-07T03:00:00.000Z', deadline: '2026-12-08T03:00:00.000Z', expires: '2027-12-08T03:00:00.000Z',
  scopes: [], payload: { image: { type: 'task-image', taskId: 'imgTaskIdAAAAAAAAAAAAA', path: 'public/image.tar.zst' }, command: ['true'], maxRunTime: 60, features: { chainOfTrust: true } },
  metadata: { name: 'n', description: 'd', owner: 'o@example.com', source: 'https://example.com' }, tags: {}, extra: {},
};
const input = (over: Partial<ChainOfTrustInput> = {}): ChainOfTrustInput => ({
  task, taskId: 'dSlITZ4yQgmvxxAi4A8fHQ', runId: 0, workerGroup: 'local', workerId: 'worker-1',
  artifactHashes: Object.fromEntries(Object.entries(uploaded).map(([name, body]) => [name, sha256Hex(body)])),
  environment: { publicIpAddress: '203.0.113.7', privateIpAddress: '10.0.0.7', imageHash: `sha256:${'a'.repeat(64)}`, imageArtifactHash: 'b'.repeat(64), instanceType: 'm5.large', region: 'us-east-1' },
  ...over,
});

/** What scriptworker does with a downloaded certificate: signature, then every artifact's hash. */
function verifyLikeScriptworker(json: Buffer, sig: Buffer, downloads: Record<string, Buffer>): string[] {
  if (!verifyCertificate(json, sig, ed25519Public)) return ['bad signature'];
  const cert = JSON.parse(json.toString());
  const errors: string[] = [];
  for (const [name, { sha256 }] of Object.entries<{ sha256: string }>(cert.artifacts)) {
    if (!downloads[name]) errors.push(`${name} missing`);
    else if (sha256Hex(downloads[name]!) !== sha256) errors.push(`${name} sha256 mismatch`);
  }
  return errors;
}

test('the certificate has the fields, order and form scriptworker and generic-worker use', async () => {
  const files = await chainOfTrustArtifacts(input(), { ed25519: keys.ed25519 });
  assert.deepEqual(files.map((f) => [f.name, f.contentType]), [['public/chain-of-trust.json', 'application/json'], ['public/chain-of-trust.json.sig', 'application/octet-stream']]);
  const text = files[0]!.body.toString();
  assert.match(text, /^\{\n {2}"chainOfTrustVersion": 1,\n {2}"artifacts": \{\n {4}"private\/notes.txt": \{\n {6}"sha256": "[0-9a-f]{64}"/);
  const cert = JSON.parse(text);
  assert.deepEqual(Object.keys(cert), ['chainOfTrustVersion', 'artifacts', 'task', 'taskId', 'runId', 'workerGroup', 'workerId', 'environment']);
  assert.deepEqual(cert.task, task, 'the full task definition');
  assert.equal(cert.artifacts['public/logs/certified.log'].sha256, sha256Hex(uploaded['public/logs/certified.log']!));
  assert.deepEqual(cert.environment, {
    publicIpAddress: '203.0.113.7', privateIpAddress: '10.0.0.7', imageHash: `sha256:${'a'.repeat(64)}`,
    imageArtifactHash: `sha256:${'b'.repeat(64)}`, instanceType: 'm5.large', region: 'us-east-1',
  });
  assert.equal(files[1]!.body.length, 64);
});

test('imageArtifactHash only when the image came from an artifact; empty host fields are left out', () => {
  const cert = chainOfTrustCertificate(input({ environment: { publicIpAddress: '', privateIpAddress: '', imageHash: 'sha256:c', instanceType: '', region: '' } }));
  assert.deepEqual(cert.environment, { publicIpAddress: '', privateIpAddress: '', imageHash: 'sha256:c' });
  assert.equal(chainOfTrustCertificate(input({ environment: { ...input().environment, imageArtifactHash: `sha256:${'D'.repeat(64)}` } })).environment.imageArtifactHash, `sha256:${'d'.repeat(64)}`);
  assert.throws(() => chainOfTrustCertificate(input({ environment: { ...input().environment, imageArtifactHash: 'sha256:short' } })), /imageArtifactHash "sha256:short" is not a sha256/);
  assert.throws(() => chainOfTrustCertificate(input({ artifactHashes: { 'public/x': '' } })), /artifact public\/x has no sha256/);
});

test('the signature verifies with the printed public key; tampered certificate, signature or artifact fails', async () => {
  const [json, sig] = (await chainOfTrustArtifacts(input(), { ed25519: keys.ed25519 })).map((f) => f.body) as [Buffer, Buffer];
  assert.deepEqual(verifyLikeScriptworker(json, sig, uploaded), []);

  const tamperedJson = Buffer.from(json.toString().replace('"runId": 0', '"runId": 1'));
  assert.deepEqual(verifyLikeScriptworker(tamperedJson, sig, uploaded), ['bad signature']);
  for (let i = 0; i < json.length; i += 97) {
    const flipped = Buffer.from(json);
    flipped[i]! ^= 0x20;
    assert.equal(verifyCertificate(flipped, sig, ed25519Public), false, `byte ${i} changed`);
  }
  const badSig = Buffer.from(sig);
  badSig[10]! ^= 1;
  assert.deepEqual(verifyLikeScriptworker(json, badSig, uploaded), ['bad signature']);
  assert.equal(verifyCertificate(json, sig.subarray(0, 63), ed25519Public), false);

  const otherKeys = await loadWorkerKeys(workerKeyPaths({ stateDir: mkdtempSync(path.join(os.tmpdir(), 'cot-')), keys: { openpgpPrivateKeyPath: '', ed25519PrivateKeyPath: '' } }), { createDefaults: true });
  const [, otherSig] = (await chainOfTrustArtifacts(input(), { ed25519: otherKeys.ed25519 })).map((f) => f.body) as [Buffer, Buffer];
  assert.deepEqual(verifyLikeScriptworker(json, otherSig, uploaded), ['bad signature'], 'signed by another worker');

  const tamperedArtifact = { ...uploaded, 'public/build/target.tar.gz': Buffer.from('the build outpuT') };
  assert.deepEqual(verifyLikeScriptworker(json, sig, tamperedArtifact), ['public/build/target.tar.gz sha256 mismatch']);
});

test('the legacy OpenPGP form is produced only with the OpenPGP key, and verifies; a tampered one does not', async () => {
  const files = await chainOfTrustArtifacts(input(), { ed25519: keys.ed25519, openpgp: keys.openpgp });
  assert.deepEqual(files.map((f) => f.name), ['public/chain-of-trust.json', 'public/chain-of-trust.json.sig', 'public/chainOfTrust.json.asc']);
  const asc = files[2]!.body.toString();
  assert.match(asc, /^-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA\d+\n\n\{\n {2}"chainOfTrustVersion": 1,/);
  const publicKey = await openpgp.readKey({ armoredKey: printed.openpgpArmored });
  const signed = await openpgpVerifyCertificate(asc, publicKey);
  assert.deepEqual(JSON.parse(signed), JSON.parse(files[0]!.body.toString()));
  await assert.rejects(openpgpVerifyCertificate(asc.replace('"runId": 0', '"runId": 7'), publicKey), /Signed digest did not match/);
});

test('the reserved artifact names', () => {
  assert.deepEqual([...CHAIN_OF_TRUST_ARTIFACT_NAMES], ['public/chain-of-trust.json', 'public/chain-of-trust.json.sig', 'public/chainOfTrust.json.asc', 'public/logs/certified.log']);
});

test('a certificate for 100 artifacts lists them all, sorted', async () => {
  const hashes: Record<string, string> = {};
  for (let i = 99; i >= 0; i--) hashes[`public/out/${String(i).padStart(3, '0')}.bin`] = sha256Hex(String(i));
  const [json, sig] = (await chainOfTrustArtifacts(input({ artifactHashes: hashes }), { ed25519: keys.ed25519 })).map((f) => f.body) as [Buffer, Buffer];
  const names = Object.keys(JSON.parse(json.toString()).artifacts);
  assert.equal(names.length, 100);
  assert.deepEqual(names, [...names].sort());
  assert.equal(verifyCertificate(json, sig, ed25519Public), true);
});

// Cross-checks with the tools verifiers use: Python's `cryptography` (scriptworker's
// ed25519 check) and gpg (the legacy .asc). Skipped, saying so, on a machine without them.
const hasPythonCryptography = spawnSync('python3', ['-c', 'import cryptography']).status === 0;
const hasGpg = spawnSync('gpg', ['--version']).status === 0;

test('scriptworker\'s ed25519 check (python cryptography) accepts the signature and refuses a tampered certificate', { skip: !hasPythonCryptography && 'python3 cryptography is not installed' }, async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cot-py-'));
  const [json, sig] = (await chainOfTrustArtifacts(input(), { ed25519: keys.ed25519 })).map((f) => f.body) as [Buffer, Buffer];
  writeFileSync(path.join(dir, 'chain-of-trust.json'), json);
  writeFileSync(path.join(dir, 'chain-of-trust.json.sig'), sig);
  const script = [
    'import base64, sys',
    'from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey',
    'key = Ed25519PublicKey.from_public_bytes(base64.b64decode(sys.argv[1]))',
    'key.verify(open(sys.argv[3], "rb").read(), open(sys.argv[2], "rb").read())',
  ].join('\n');
  const check = () => spawnSync('python3', ['-c', script, printed.ed25519Base64, path.join(dir, 'chain-of-trust.json'), path.join(dir, 'chain-of-trust.json.sig')], { encoding: 'utf8' });
  assert.equal(check().status, 0, check().stderr);
  writeFileSync(path.join(dir, 'chain-of-trust.json'), Buffer.concat([json, Buffer.from(' ')]));
  const tampered = check();
  assert.notEqual(tampered.status, 0);
  assert.match(tampered.stderr, /InvalidSignature/);
});

test('gpg verifies the legacy chainOfTrust.json.asc with the printed OpenPGP public key', { skip: !hasGpg && 'gpg is not installed' }, async () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'cot-gpg-'));
  const files = await chainOfTrustArtifacts(input(), { ed25519: keys.ed25519, openpgp: keys.openpgp });
  writeFileSync(path.join(home, 'pub.asc'), printed.openpgpArmored);
  writeFileSync(path.join(home, 'cot.asc'), files[2]!.body);
  const gpg = (...args: string[]) => spawnSync('gpg', ['--homedir', home, '--batch', ...args], { encoding: 'utf8' });
  assert.equal(gpg('--import', path.join(home, 'pub.asc')).status, 0);
  const good = gpg('--verify', path.join(home, 'cot.asc'));
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stderr, /Good signature/);
  const out = gpg('--decrypt', path.join(home, 'cot.asc'));
  assert.deepEqual(JSON.parse(out.stdout), JSON.parse(files[0]!.body.toString()));
  writeFileSync(path.join(home, 'cot.asc'), files[2]!.body.toString().replace('"runId": 0', '"runId": 9'));
  const bad = gpg('--verify', path.join(home, 'cot.asc'));
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /BAD signature/);
});
