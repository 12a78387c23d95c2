// What an operator and a task author type: `worker keys` creates the keys once and prints the
// public keys; `worker encrypt-env --key pub.asc` makes encryptedEnv entries that the worker's
// private key decrypts; bad arguments and bad key files give a one-line error, no stack.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadWorkerKeys, workerKeyPaths } from '../../lib/crypto/worker-keys.ts';
import { decryptEncryptedEnv } from '../../lib/crypto/encrypted-env.ts';
import { RESERVED_ENV_NAMES } from '../../lib/task/reserved-env.ts';

const worker = path.resolve(import.meta.dirname, '../../bin/worker');

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(worker, args, { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('worker keys creates the keys once under --state and prints the same public keys each time', async () => {
  const state = mkdtempSync(path.join(os.tmpdir(), 'keys-cli-'));
  const first = await run(['keys', '--state', state]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /created .*openpgp-private\.asc\ncreated .*ed25519-private\.key/);
  assert.match(first.stdout, /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]+-----END PGP PUBLIC KEY BLOCK-----/);
  assert.doesNotMatch(first.stdout, /PRIVATE KEY/);
  for (const f of ['openpgp-private.asc', 'ed25519-private.key']) assert.equal(statSync(path.join(state, 'keys', f)).mode & 0o777, 0o600);
  const second = await run(['keys', '--state', state]);
  assert.equal(second.stdout, first.stdout);
  assert.equal(second.stderr, '', 'nothing created the second time');
  const ed = await run(['keys', '--state', state, '--ed25519']);
  assert.match(ed.stdout, /^[A-Za-z0-9+/]{43}=\n$/);
  assert.ok(first.stdout.includes(ed.stdout.trim()));
});

test('keys at configured paths (WORKER_*_PRIVATE_KEY_PATH), and a malformed one is named', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keys-cli-'));
  const env = { WORKER_OPENPGP_PRIVATE_KEY_PATH: path.join(dir, 'pgp.asc'), WORKER_ED25519_PRIVATE_KEY_PATH: path.join(dir, 'ed.key'), WORKER_STATE_DIR: path.join(dir, 'state') };
  assert.equal((await run(['keys'], env)).code, 0);
  assert.ok(readFileSync(env.WORKER_OPENPGP_PRIVATE_KEY_PATH, 'utf8').includes('PRIVATE KEY BLOCK'));
  writeFileSync(env.WORKER_OPENPGP_PRIVATE_KEY_PATH, 'not a key');
  const bad = await run(['keys'], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, new RegExp(`^worker keys: the OpenPGP private key file ${env.WORKER_OPENPGP_PRIVATE_KEY_PATH} does not hold an armored OpenPGP private key`));
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
});

test('worker encrypt-env output decrypts with the worker key to the given variables', async () => {
  const state = mkdtempSync(path.join(os.tmpdir(), 'keys-cli-'));
  const pub = path.join(state, 'pub.asc');
  const printed = await run(['keys', '--state', state, '--openpgp']);
  writeFileSync(pub, printed.stdout);
  const taskId = 'fN1WmF0pSX2l9FQ5pAk6tA';
  const value = 'multi\nline "value" with = signs\tand ✓';
  const out = await run(['encrypt-env', '--key', pub, '--task-id', taskId, `SECRET_ONE=${value}`, 'SECRET_TWO=second-secret']);
  assert.equal(out.code, 0, out.stderr);
  const entries = out.stdout.trim().split('\n');
  assert.equal(entries.length, 2);
  for (const e of entries) assert.match(e, /^[A-Za-z0-9+/]+={0,2}$/);
  assert.ok(!out.stdout.includes('second-secret'));
  const keys = await loadWorkerKeys(workerKeyPaths({ stateDir: state, keys: { openpgpPrivateKeyPath: '', ed25519PrivateKeyPath: '' } }));
  const env = await decryptEncryptedEnv(entries, keys.openpgp, { taskId, reservedNames: RESERVED_ENV_NAMES });
  assert.deepEqual(env, { SECRET_ONE: value, SECRET_TWO: 'second-secret' });
  // The default window is now .. now + 24 h: the same entries are refused for another task.
  await assert.rejects(decryptEncryptedEnv(entries, keys.openpgp, { taskId: 'other', reservedNames: [] }), /taskId of the env payload does not match/);
  await assert.rejects(decryptEncryptedEnv(entries, keys.openpgp, { taskId, reservedNames: [], now: Date.now() + 25 * 3600_000 }), /end time in the env payload is in the past/);
});

test('worker encrypt-env honours --start and --end (ms or ISO dates)', async () => {
  const state = mkdtempSync(path.join(os.tmpdir(), 'keys-cli-'));
  const pub = path.join(state, 'pub.asc');
  writeFileSync(pub, (await run(['keys', '--state', state, '--openpgp'])).stdout);
  const keys = await loadWorkerKeys(workerKeyPaths({ stateDir: state, keys: { openpgpPrivateKeyPath: '', ed25519PrivateKeyPath: '' } }));
  const start = Date.now() + 3600_000;
  const out = await run(['encrypt-env', '--key', pub, '--task-id', 't', '--start', String(start), '--end', new Date(start + 60_000).toISOString(), 'A=b']);
  assert.equal(out.code, 0, out.stderr);
  const ctx = { taskId: 't', reservedNames: [] };
  await assert.rejects(decryptEncryptedEnv([out.stdout.trim()], keys.openpgp, ctx), /start time in the env payload is in the future/);
  assert.deepEqual(await decryptEncryptedEnv([out.stdout.trim()], keys.openpgp, { ...ctx, now: start + 1 }), { A: 'b' });
});

test('worker encrypt-env refuses bad arguments with a usage line, never echoing a value', async () => {
  const state = mkdtempSync(path.join(os.tmpdir(), 'keys-cli-'));
  const pub = path.join(state, 'pub.asc');
  writeFileSync(pub, (await run(['keys', '--state', state, '--openpgp'])).stdout);
  const garbage = path.join(state, 'garbage.asc');
  writeFileSync(garbage, 'hello');
  const cases: [string[], RegExp][] = [
    [['encrypt-env', '--task-id', 't', 'A=b'], /--key is required/],
    [['encrypt-env', '--key', pub, 'A=b'], /--task-id is required/],
    [['encrypt-env', '--key', pub, '--task-id', 't'], /give at least one NAME=VALUE/],
    [['encrypt-env', '--key', pub, '--task-id', 't', 'just-the-secret-value'], /argument 1 is not NAME=VALUE/],
    [['encrypt-env', '--key', path.join(state, 'missing.asc'), '--task-id', 't', 'A=b'], /cannot read --key/],
    [['encrypt-env', '--key', garbage, '--task-id', 't', 'A=b'], /is not an armored OpenPGP key/],
    [['encrypt-env', '--key', pub, '--task-id', 't', '--start', 'soon', 'A=b'], /--start "soon" is neither ms since the epoch nor a date/],
    [['encrypt-env', '--key', pub, '--task-id', 't', '--start', '2000', '--end', '1000', 'A=b'], /--end must come after --start/],
  ];
  for (const [args, pattern] of cases) {
    const r = await run(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, pattern);
    assert.match(r.stderr, /usage: worker encrypt-env/);
    assert.ok(!r.stderr.includes('just-the-secret-value'));
  }
});
