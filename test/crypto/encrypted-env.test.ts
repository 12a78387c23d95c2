// encryptedEnv: values round-trip (any text, newlines included); each of docker-worker's checks
// fails in its order with "secret data violation -- <reason>; incidentId: <uuid>"; a damaged,
// truncated, wrongly keyed or non-JSON entry fails clearly; no error ever holds the value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { decryptEncryptedEnv, encryptEnvVariable, EncryptedEnvError } from '../../lib/crypto/encrypted-env.ts';
import { RESERVED_ENV_NAMES } from '../../lib/task/reserved-env.ts';

const { privateKey: armoredPrivate, publicKey: armoredPublic } = await openpgp.generateKey({ userIDs: [{ name: 'worker' }], format: 'armored' });
const privateKey = await openpgp.readPrivateKey({ armoredKey: armoredPrivate });
const publicKey = await openpgp.readKey({ armoredKey: armoredPublic });
const other = await openpgp.generateKey({ userIDs: [{ name: 'another worker' }], format: 'object' });

const taskId = 'dSlITZ4yQgmvxxAi4A8fHQ';
const now = Date.now();
const SECRET = 'sup3r-s3cret-value';
const context = { taskId, payloadEnv: { PLAIN: 'x' }, reservedNames: RESERVED_ENV_NAMES, now };
const variable = (over: Record<string, unknown> = {}) => ({ taskId, startTime: now - 1000, endTime: now + 60_000, name: 'TOKEN', value: SECRET, ...over });

/** Encrypts arbitrary JSON text (fields the real encoder would not produce). */
async function encryptText(text: string, key: openpgp.Key = publicKey): Promise<string> {
  const binary = await openpgp.encrypt({ message: await openpgp.createMessage({ text }), encryptionKeys: key, format: 'binary' });
  return Buffer.from(binary).toString('base64');
}

function assertNoSecret(err: unknown, secret = SECRET): void {
  assert.ok(err instanceof EncryptedEnvError, `an EncryptedEnvError, got ${err}`);
  for (const text of [err.message, err.detail, String(err.stack)]) assert.ok(!text.includes(secret), `the secret leaked: ${text}`);
}

test('values round-trip, newlines and any text included', async () => {
  const values = { TOKEN: SECRET, MULTI: 'line one\nline two\r\n\ttabbed "quoted" \\ end\n', UNICODE: 'pässwörd ✓ 🔑', EMPTY: '', EQ: 'a=b=c' };
  const entries = await Promise.all(Object.entries(values).map(([name, value]) => encryptEnvVariable(publicKey, variable({ name, value }) as never)));
  assert.deepEqual(await decryptEncryptedEnv(entries, privateKey, context), values);
  assert.deepEqual(await decryptEncryptedEnv([], privateKey, context), {});
});

test('base64 wrapped over several lines (as `base64` prints it) is accepted', async () => {
  const entry = await encryptEnvVariable(publicKey, variable());
  const wrapped = entry.replace(/.{76}/g, '$&\n');
  assert.deepEqual(await decryptEncryptedEnv([wrapped], privateKey, context), { TOKEN: SECRET });
});

const violations: [string, Record<string, unknown>, string][] = [
  ['a reserved name', { name: 'TASK_ID' }, 'an environment variable conflicts with an existing environment variable'],
  ['another reserved name', { name: 'TASKCLUSTER_ROOT_URL' }, 'an environment variable conflicts with an existing environment variable'],
  ['a name also in payload.env', { name: 'PLAIN' }, 'an environment variable has been duplicated in the task payload'],
  ['message version 2', { messageVersion: 2 }, 'the version of the message is not supported'],
  ['message version "1"', { messageVersion: '1' }, 'the version of the message is not supported'],
  ['another task', { taskId: 'otherTaskIdAAAAAAAAAAA' }, 'the taskId of the env payload does not match the taskId of the task'],
  ['a start time in the future', { startTime: now + 60_000 }, 'the start time in the env payload is in the future'],
  ['an end time in the past', { endTime: now - 1 }, 'the end time in the env payload is in the past'],
  ['no start time', { startTime: undefined }, 'the start time in the env payload is missing or not a number (ms since the epoch)'],
  ['an end time as a date string', { endTime: new Date(now + 60_000).toISOString() }, 'the end time in the env payload is missing or not a number (ms since the epoch)'],
];

for (const [what, fields, reason] of violations) {
  test(`secret data violation: ${what}`, async () => {
    const entry = await encryptText(JSON.stringify({ messageVersion: 1, ...variable(), ...fields }));
    const err = await decryptEncryptedEnv([entry], privateKey, context).then(() => undefined, (e: unknown) => e);
    assertNoSecret(err);
    const e = err as EncryptedEnvError;
    assert.equal(e.kind, 'violation');
    assert.match(e.incidentId!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(e.message, `secret data violation -- ${reason}; incidentId: ${e.incidentId}`);
    assert.ok(e.detail.includes(e.incidentId!), 'the worker-log detail carries the same incident id');
  });
}

test('the checks come in docker-worker\'s order: the first failing one is reported', async () => {
  // Wrong version, wrong task, future start and past end all at once: the version is reported.
  const entry = await encryptText(JSON.stringify({ ...variable({ taskId: 'x', startTime: now + 9e6, endTime: now - 9e6 }), messageVersion: 3 }));
  await assert.rejects(decryptEncryptedEnv([entry], privateKey, context), /the version of the message is not supported/);
  // Reserved beats duplicated (TASK_ID also in payload.env).
  const reserved = await encryptEnvVariable(publicKey, variable({ name: 'TASK_ID', taskId: 'x' }) as never);
  await assert.rejects(decryptEncryptedEnv([reserved], privateKey, { ...context, payloadEnv: { TASK_ID: 'y' } }), /conflicts with an existing environment variable/);
  // Wrong task beats a start time in the future.
  const both = await encryptEnvVariable(publicKey, variable({ taskId: 'x', startTime: now + 9e6 }) as never);
  await assert.rejects(decryptEncryptedEnv([both], privateKey, context), /taskId of the env payload does not match/);
});

test('a name given twice in encryptedEnv is a duplicate', async () => {
  const a = await encryptEnvVariable(publicKey, variable({ value: 'first-value' }) as never);
  const b = await encryptEnvVariable(publicKey, variable({ value: 'second-value' }) as never);
  const err = await decryptEncryptedEnv([a, b], privateKey, context).then(() => undefined, (e: unknown) => e);
  assertNoSecret(err, 'first-value');
  assertNoSecret(err, 'second-value');
  assert.match((err as Error).message, /has been duplicated in the task payload/);
});

test('an entry for another worker\'s key is refused clearly', async () => {
  const entry = await encryptEnvVariable(other.publicKey, variable());
  const err = await decryptEncryptedEnv([entry], privateKey, context).then(() => undefined, (e: unknown) => e);
  assertNoSecret(err);
  assert.equal((err as EncryptedEnvError).kind, 'unreadable');
  assert.match((err as Error).message, /^encryptedEnv entry 1 of 1 was not encrypted to this worker's key\. .*worker keys --openpgp/);
});

test('the entry that fails is named by its position', async () => {
  const good = await encryptEnvVariable(publicKey, variable());
  await assert.rejects(decryptEncryptedEnv([good, 'not base64!'], privateKey, context), /^EncryptedEnvError: encryptedEnv entry 2 of 2 is not base64\./);
});

test('valid OpenPGP holding bad JSON, a non-object or missing fields fails without quoting the text', async () => {
  const cases: [string, RegExp][] = [
    [`{"name": "TOKEN", "value": "${SECRET}"`, /does not hold JSON/],
    [SECRET, /does not hold JSON/],
    [`["${SECRET}"]`, /does not hold a JSON object/],
    ['null', /does not hold a JSON object/],
    [JSON.stringify({ ...variable(), name: undefined }), /has no valid "name"/],
    [JSON.stringify({ ...variable(), name: '' }), /has no valid "name"/],
    [JSON.stringify({ ...variable(), name: 'A=B' }), /has no valid "name"/],
    [JSON.stringify({ ...variable(), messageVersion: 1, value: undefined }), /has no string "value" \(variable TOKEN\)/],
    [JSON.stringify({ ...variable(), messageVersion: 1, value: 12345678 }), /has no string "value"/],
  ];
  for (const [text, pattern] of cases) {
    const err = await decryptEncryptedEnv([await encryptText(text)], privateKey, context).then(() => undefined, (e: unknown) => e);
    assertNoSecret(err);
    assert.match((err as Error).message, pattern, text);
    assert.equal((err as EncryptedEnvError).kind, 'unreadable');
  }
});

test('fuzz: truncated, corrupted and garbage entries fail with a clear EncryptedEnvError, never a crash or a leak', async () => {
  const entry = await encryptEnvVariable(publicKey, variable());
  const bytes = Buffer.from(entry, 'base64');
  let seed = 12345;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const inputs: unknown[] = ['', '   ', '====', 'A', '@@@@', 'not base64!', 'AAAA', Buffer.alloc(64).toString('base64'), 42, null, { a: 1 }];
  inputs.push(Buffer.from('-----BEGIN PGP MESSAGE-----').toString('base64'));
  inputs.push(await encryptText(JSON.stringify({ messageVersion: 1, ...variable() })).then((b) => b.slice(0, -8)));
  // Every truncation length in the first 40 bytes, then a spread of the rest.
  for (let n = 0; n < bytes.length; n += n < 40 ? 1 : 1 + rand(9)) inputs.push(bytes.subarray(0, n).toString('base64'));
  // Flipped bits and overwritten bytes anywhere.
  for (let i = 0; i < 150; i++) {
    const damaged = Buffer.from(bytes);
    const at = rand(damaged.length);
    if (i % 2) damaged[at] ^= 1 << rand(8); else damaged[at] = rand(256);
    inputs.push(damaged.toString('base64'));
  }
  // Random bytes that are not OpenPGP, and a plain signed-but-unencrypted message.
  for (let i = 0; i < 30; i++) inputs.push(Buffer.from(Array.from({ length: 1 + rand(300) }, () => rand(256))).toString('base64'));
  const literal = await openpgp.sign({ message: await openpgp.createMessage({ text: JSON.stringify(variable()) }), signingKeys: privateKey, format: 'binary' });
  inputs.push(Buffer.from(literal).toString('base64'));

  let decrypted = 0;
  for (const input of inputs) {
    try {
      await decryptEncryptedEnv([input as string], privateKey, context);
      decrypted++; // a flipped bit in unauthenticated padding may still decrypt to the intact message
    } catch (err) {
      assertNoSecret(err);
      assert.match((err as Error).message, /^(encryptedEnv entry 1 of 1 .+\. .+|secret data violation -- .+; incidentId: .+)$/s);
    }
  }
  assert.ok(decrypted < inputs.length / 10, `most damaged entries must fail (${decrypted} of ${inputs.length} decrypted)`);
});

test('a value encrypted with gpg to the worker\'s public key (as docker-worker task authors did) decrypts', { skip: spawnSync('gpg', ['--version']).status !== 0 && 'gpg is not installed' }, async () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'env-gpg-'));
  writeFileSync(path.join(home, 'pub.asc'), armoredPublic);
  const gpg = (args: string[], input?: string) => spawnSync('gpg', ['--homedir', home, '--batch', '--trust-model', 'always', ...args], { input });
  assert.equal(gpg(['--import', path.join(home, 'pub.asc')]).status, 0);
  const text = JSON.stringify({ messageVersion: 1, ...variable({ value: 'from gpg\nwith a newline' }) });
  const out = gpg(['--encrypt', '--recipient', 'worker'], text);
  assert.equal(out.status, 0, out.stderr.toString());
  assert.deepEqual(await decryptEncryptedEnv([out.stdout.toString('base64')], privateKey, context), { TOKEN: 'from gpg\nwith a newline' });
});

test('a compressed entry that expands past 1 MiB is refused, not decompressed without end', async () => {
  const text = JSON.stringify({ messageVersion: 1, ...variable({ value: 'x'.repeat(3 * 1024 * 1024) }) });
  const binary = await openpgp.encrypt({ message: await openpgp.createMessage({ text }), encryptionKeys: publicKey, format: 'binary', config: { preferredCompressionAlgorithm: openpgp.enums.compression.zlib } });
  assert.ok(binary.length < 100_000, 'the entry itself is small');
  await assert.rejects(decryptEncryptedEnv([Buffer.from(binary).toString('base64')], privateKey, context), /^EncryptedEnvError: encryptedEnv entry 1 of 1 is larger than 1 MiB once decompressed\./);
});
