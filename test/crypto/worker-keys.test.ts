// The worker's keys: created once, 0600, reloaded unchanged; configured but missing or
// malformed keys fail with a message naming the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sign, verify } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import {
  createMissingWorkerKeys, ed25519PublicKeyFromBase64, loadWorkerKeys, openWorkerKeys, workerKeyPaths, workerPublicKeys, WorkerKeyError,
} from '../../lib/crypto/worker-keys.ts';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'worker-keys-'));
const noKeys = { openpgpPrivateKeyPath: '', ed25519PrivateKeyPath: '' };

test('keys are created once under the state directory, 0600, and reload to the same public keys', async () => {
  const stateDir = tmp();
  const paths = workerKeyPaths({ stateDir, keys: noKeys });
  assert.equal(paths.openpgp, path.join(stateDir, 'keys/openpgp-private.asc'));
  assert.deepEqual(await createMissingWorkerKeys(paths), [paths.openpgp, paths.ed25519]);
  for (const file of [paths.openpgp, paths.ed25519]) assert.equal(statSync(file).mode & 0o777, 0o600, file);
  assert.equal(statSync(path.dirname(paths.openpgp)).mode & 0o777, 0o700);
  const first = workerPublicKeys(await loadWorkerKeys(paths));
  const before = readFileSync(paths.openpgp, 'utf8');
  assert.deepEqual(await createMissingWorkerKeys(paths), [], 'nothing is created the second time');
  assert.equal(readFileSync(paths.openpgp, 'utf8'), before);
  assert.deepEqual(workerPublicKeys(await loadWorkerKeys(paths)), first);
  assert.match(first.openpgpArmored, /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
  assert.doesNotMatch(first.openpgpArmored, /PRIVATE/);
  assert.equal(Buffer.from(first.ed25519Base64, 'base64').length, 32);
});

test('the ed25519 file is base64 of the seed (generic-worker\'s format) and the printed public key verifies its signatures', async () => {
  const paths = workerKeyPaths({ stateDir: tmp(), keys: noKeys });
  await createMissingWorkerKeys(paths);
  assert.equal(Buffer.from(readFileSync(paths.ed25519, 'utf8'), 'base64').length, 32);
  const keys = await loadWorkerKeys(paths);
  const data = Buffer.from('certificate');
  const signature = sign(null, data, keys.ed25519);
  const publicKey = ed25519PublicKeyFromBase64(workerPublicKeys(keys).ed25519Base64);
  assert.equal(verify(null, data, publicKey, signature), true);
  assert.equal(verify(null, Buffer.from('certificatf'), publicKey, signature), false);
});

test('the OpenPGP key decrypts what is encrypted to the printed public key', async () => {
  const paths = workerKeyPaths({ stateDir: tmp(), keys: noKeys });
  const keys = await loadWorkerKeys(paths, { createDefaults: true });
  const publicKey = await openpgp.readKey({ armoredKey: workerPublicKeys(keys).openpgpArmored });
  const encrypted = await openpgp.encrypt({ message: await openpgp.createMessage({ text: 'hello' }), encryptionKeys: publicKey });
  const { data } = await openpgp.decrypt({ message: await openpgp.readMessage({ armoredMessage: encrypted }), decryptionKeys: keys.openpgp });
  assert.equal(data, 'hello');
});

test('configured paths are used; a configured key that is missing is not invented at start', async () => {
  const dir = tmp();
  const keys = { openpgpPrivateKeyPath: path.join(dir, 'pgp.asc'), ed25519PrivateKeyPath: path.join(dir, 'ed.key') };
  const paths = workerKeyPaths({ stateDir: path.join(dir, 'state'), keys });
  assert.equal(paths.openpgp, keys.openpgpPrivateKeyPath);
  await assert.rejects(loadWorkerKeys(paths, { createDefaults: true }), (e: Error) =>
    e instanceof WorkerKeyError && e.message.includes(keys.openpgpPrivateKeyPath) && /does not exist/.test(e.message));
  // `worker keys` (createMissingWorkerKeys) is how an operator makes them at those paths.
  assert.deepEqual(await createMissingWorkerKeys(paths), [keys.openpgpPrivateKeyPath, keys.ed25519PrivateKeyPath]);
  await loadWorkerKeys(paths);
});

test('malformed or unreadable keys fail with a message naming the file', async () => {
  const dir = tmp();
  const good = workerKeyPaths({ stateDir: dir, keys: noKeys });
  await createMissingWorkerKeys(good);
  const bad = (name: string, text: string) => { const p = path.join(dir, name); writeFileSync(p, text, { mode: 0o600 }); return p; };
  const cases: [string, Partial<{ openpgp: string; ed25519: string }>, RegExp][] = [
    ['not armored', { openpgp: bad('pgp-garbage.asc', 'hello') }, /does not hold an armored OpenPGP private key/],
    ['a public key', { openpgp: bad('pgp-public.asc', workerPublicKeys(await loadWorkerKeys(good)).openpgpArmored) }, /does not hold an armored OpenPGP private key/],
    ['ed25519 not base64', { ed25519: bad('ed-garbage.key', '!!!') }, /malformed \(not base64\)/],
    ['ed25519 too short', { ed25519: bad('ed-short.key', Buffer.alloc(16).toString('base64')) }, /16 bytes instead of a 32-byte seed/],
    ['ed25519 empty', { ed25519: bad('ed-empty.key', '') }, /malformed/],
  ];
  const { privateKey: locked } = await openpgp.generateKey({ userIDs: [{ name: 'x' }], passphrase: 'pw', format: 'armored' });
  cases.push(['passphrase-protected', { openpgp: bad('pgp-locked.asc', locked) }, /protected by a passphrase/]);
  for (const [what, override, pattern] of cases) {
    const paths = { ...good, ...override };
    const file = override.openpgp ?? override.ed25519!;
    await assert.rejects(loadWorkerKeys(paths), (e: Error) => e instanceof WorkerKeyError && e.message.includes(file) && pattern.test(e.message), what);
  }
  if (process.getuid?.() !== 0) {
    const unreadable = bad('ed-unreadable.key', readFileSync(good.ed25519, 'utf8'));
    chmodSync(unreadable, 0);
    await assert.rejects(loadWorkerKeys({ ...good, ed25519: unreadable }), /permission denied/);
  }
});

test('an ed25519 key in PKCS#8 PEM is accepted too', async () => {
  const dir = tmp();
  const paths = workerKeyPaths({ stateDir: dir, keys: noKeys });
  await createMissingWorkerKeys(paths);
  const keys = await loadWorkerKeys(paths);
  const pem = path.join(dir, 'ed.pem');
  writeFileSync(pem, keys.ed25519.export({ format: 'pem', type: 'pkcs8' }));
  const again = await loadWorkerKeys({ ...paths, ed25519: pem });
  assert.equal(workerPublicKeys(again).ed25519Base64, workerPublicKeys(keys).ed25519Base64);
});

test('worker start: the ed25519 key now, the OpenPGP key (and openpgp.js) at its first use, created at the default path', async () => {
  const stateDir = tmp();
  const paths = workerKeyPaths({ stateDir, keys: noKeys });
  const keys = await openWorkerKeys(paths);
  assert.equal(statSync(paths.ed25519).mode & 0o777, 0o600);
  assert.throws(() => statSync(paths.openpgp), /ENOENT/, 'no OpenPGP key before a task needs it');
  const key = await keys.openpgp();
  assert.ok(key.isDecrypted());
  assert.equal(statSync(paths.openpgp).mode & 0o777, 0o600);
  assert.equal(await keys.openpgp(), key, 'read once');
  // The same keys as `worker keys` prints.
  assert.equal(workerPublicKeys(await loadWorkerKeys(paths)).openpgpArmored, key.toPublic().armor());
});

test('worker start: a configured OpenPGP key must exist and be armored at start; an unusable one fails its first use, and is read again after', async () => {
  const stateDir = tmp();
  const missing = path.join(stateDir, 'missing.asc');
  await assert.rejects(openWorkerKeys(workerKeyPaths({ stateDir, keys: { ...noKeys, openpgpPrivateKeyPath: missing } })),
    (err: unknown) => err instanceof WorkerKeyError && err.file === missing && /does not exist/.test(err.message));
  const notArmored = path.join(stateDir, 'not-armored.asc');
  writeFileSync(notArmored, 'hello\n');
  await assert.rejects(openWorkerKeys(workerKeyPaths({ stateDir, keys: { ...noKeys, openpgpPrivateKeyPath: notArmored } })),
    (err: unknown) => err instanceof WorkerKeyError && err.file === notArmored && /no BEGIN PGP PRIVATE KEY BLOCK line/.test(err.message));
  const broken = path.join(stateDir, 'broken.asc');
  writeFileSync(broken, '-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nnot a key\n-----END PGP PRIVATE KEY BLOCK-----\n');
  const keys = await openWorkerKeys(workerKeyPaths({ stateDir, keys: { ...noKeys, openpgpPrivateKeyPath: broken } }));
  await assert.rejects(keys.openpgp(), (err: unknown) => err instanceof WorkerKeyError && err.file === broken && /does not hold an armored OpenPGP private key/.test(err.message));
  const { privateKey } = await openpgp.generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 't' }], format: 'armored' });
  writeFileSync(broken, privateKey);
  assert.ok((await keys.openpgp()).isDecrypted(), 'the fixed file is read at the next use');
  assert.throws(() => statSync(path.join(stateDir, 'keys/openpgp-private.asc')), /ENOENT/, 'no key invented beside a configured one');
});
