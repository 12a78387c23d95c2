// The worker's two private keys: an OpenPGP key pair (task authors encrypt `encryptedEnv` values
// to its public key; it also signs the legacy `chainOfTrust.json.asc`) and an ed25519 signing key
// (the detached `chain-of-trust.json.sig`). Each lives in a file of its own, 0600:
//  - OpenPGP: the armored private key (no passphrase), as `gpg --export-secret-keys --armor` writes it;
//  - ed25519: base64 of the 32-byte seed, the format generic-worker's `new-ed25519-keypair` writes.
// Unconfigured paths default to files under `<stateDir>/keys/`.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as openpgp from 'openpgp';
import { openpgpLib } from './openpgp-lib.ts';

export interface WorkerKeySettings {
  stateDir: string;
  keys: { openpgpPrivateKeyPath: string; ed25519PrivateKeyPath: string };
}

export interface WorkerKeyPaths {
  openpgp: string;
  ed25519: string;
  /** Which of the two were set in the configuration (an operator provisioned them). */
  configured: { openpgp: boolean; ed25519: boolean };
}

export interface WorkerKeys {
  openpgp: openpgp.PrivateKey;
  ed25519: KeyObject;
  paths: WorkerKeyPaths;
}

/**
 * The keys a task run uses: the ed25519 key, read at start, and the OpenPGP key, read (and at
 * the default path created) the first time a task needs it.
 */
export interface TaskKeys {
  ed25519: KeyObject;
  openpgp(): Promise<openpgp.PrivateKey>;
}

export interface WorkerPublicKeys {
  /** Armored OpenPGP public key: what `worker encrypt-env --key` takes. */
  openpgpArmored: string;
  /** Base64 of the raw 32-byte ed25519 public key: what scriptworker's config lists. */
  ed25519Base64: string;
}

/** A key file that is missing, unreadable or not a usable key. The message names the file. */
export class WorkerKeyError extends Error {
  override name = 'WorkerKeyError';
  readonly file: string;
  constructor(file: string, message: string) {
    super(message);
    this.file = file;
  }
}

export function workerKeyPaths(settings: WorkerKeySettings): WorkerKeyPaths {
  const dir = path.join(settings.stateDir, 'keys');
  return {
    openpgp: settings.keys.openpgpPrivateKeyPath || path.join(dir, 'openpgp-private.asc'),
    ed25519: settings.keys.ed25519PrivateKeyPath || path.join(dir, 'ed25519-private.key'),
    configured: { openpgp: settings.keys.openpgpPrivateKeyPath !== '', ed25519: settings.keys.ed25519PrivateKeyPath !== '' },
  };
}

/**
 * Creates whichever of the two key files does not exist yet (0600, parent directory 0700 when
 * created) and leaves existing ones alone. Returns the paths it created.
 */
export async function createMissingWorkerKeys(paths: WorkerKeyPaths, options: { userId?: string } = {}): Promise<string[]> {
  const created: string[] = [];
  if (await writeNew(paths.openpgp, async () => {
    const { privateKey } = await (await openpgpLib()).generateKey({
      type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: options.userId ?? 'docker-worker' }], format: 'armored',
    });
    return privateKey;
  })) created.push(paths.openpgp);
  if (await writeNew(paths.ed25519, async () => ed25519SeedBase64(generateKeyPairSync('ed25519').privateKey))) created.push(paths.ed25519);
  return created;
}

/**
 * Reads both keys. For `worker start`: a configured key must exist; a default-path key that does
 * not exist yet is created first when `createDefaults` is set. Any problem is a WorkerKeyError
 * naming the file.
 */
export async function loadWorkerKeys(paths: WorkerKeyPaths, options: { createDefaults?: boolean } = {}): Promise<WorkerKeys> {
  if (options.createDefaults) {
    await createMissingWorkerKeys({
      ...paths,
      // Never invent a key at a path the operator configured: a missing one is a provisioning error.
      openpgp: paths.configured.openpgp ? '' : paths.openpgp,
      ed25519: paths.configured.ed25519 ? '' : paths.ed25519,
    });
  }
  return { openpgp: await readOpenpgpPrivateKey(paths.openpgp), ed25519: await readEd25519PrivateKey(paths.ed25519), paths };
}

/**
 * The keys for \`worker start\`. The ed25519 key is read now (created first at the default path).
 * The OpenPGP key at a configured path must exist and be an armored private key now; it is
 * parsed, and at the default path created, when a task first needs it: before anyone ran
 * \`worker keys\` no task can have been encrypted to it. Problems are WorkerKeyErrors naming the file.
 */
export async function openWorkerKeys(paths: WorkerKeyPaths): Promise<TaskKeys & { paths: WorkerKeyPaths }> {
  if (!paths.configured.ed25519) await createMissingWorkerKeys({ ...paths, openpgp: '' });
  const ed25519 = await readEd25519PrivateKey(paths.ed25519);
  if (paths.configured.openpgp) {
    const text = await readKeyFile(paths.openpgp, 'OpenPGP private key');
    if (!text.includes('-----BEGIN PGP PRIVATE KEY BLOCK-----')) {
      throw new WorkerKeyError(paths.openpgp, `the OpenPGP private key file ${paths.openpgp} does not hold an armored OpenPGP private key (no BEGIN PGP PRIVATE KEY BLOCK line); write one with 'worker keys' or 'gpg --export-secret-keys --armor'`);
    }
  }
  let loading: Promise<openpgp.PrivateKey> | undefined;
  const openpgpKey = (): Promise<openpgp.PrivateKey> => (loading ??= (async () => {
    if (!paths.configured.openpgp) await createMissingWorkerKeys({ ...paths, ed25519: '' });
    return readOpenpgpPrivateKey(paths.openpgp);
  })().catch((err: unknown) => { loading = undefined; throw err; }));
  return { ed25519, openpgp: openpgpKey, paths };
}

export function workerPublicKeys(keys: Pick<WorkerKeys, 'openpgp' | 'ed25519'>): WorkerPublicKeys {
  return { openpgpArmored: keys.openpgp.toPublic().armor(), ed25519Base64: ed25519PublicKeyBase64(keys.ed25519) };
}

export async function readOpenpgpPrivateKey(file: string): Promise<openpgp.PrivateKey> {
  const text = await readKeyFile(file, 'OpenPGP private key');
  let key: openpgp.PrivateKey;
  try {
    key = await (await openpgpLib()).readPrivateKey({ armoredKey: text });
  } catch (err) {
    throw new WorkerKeyError(file, `the OpenPGP private key file ${file} does not hold an armored OpenPGP private key (${(err as Error).message}); write one with 'worker keys' or 'gpg --export-secret-keys --armor'`);
  }
  if (!key.isDecrypted()) throw new WorkerKeyError(file, `the OpenPGP private key in ${file} is protected by a passphrase; the worker needs it unprotected (the file itself is kept 0600)`);
  for (const [use, find] of [['decrypt', () => key.getDecryptionKeys()], ['sign', () => key.getSigningKey()]] as const) {
    try {
      const found = await find();
      if (Array.isArray(found) && found.length === 0) throw new Error('no such subkey');
    } catch (err) {
      throw new WorkerKeyError(file, `the OpenPGP private key in ${file} cannot ${use} (${(err as Error).message}); it needs an encryption subkey and a signing key`);
    }
  }
  return key;
}

export async function readEd25519PrivateKey(file: string): Promise<KeyObject> {
  const text = (await readKeyFile(file, 'ed25519 private key')).trim();
  try {
    if (text.startsWith('-----BEGIN')) {
      const key = createPrivateKey(text);
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key, not ed25519`);
      return key;
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new Error('not base64');
    const seed = Buffer.from(text, 'base64');
    if (seed.length !== 32) throw new Error(`${seed.length} bytes instead of a 32-byte seed`);
    return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new WorkerKeyError(file, `the ed25519 private key file ${file} is malformed (${(err as Error).message}); it must hold base64 of the 32-byte seed (as 'worker keys' and generic-worker write it) or a PKCS#8 PEM key`);
  }
}

/** Base64 of the raw 32-byte public key of an ed25519 private or public key. */
export function ed25519PublicKeyBase64(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32).toString('base64');
}

/** An ed25519 public key from base64 of its raw 32 bytes (as `worker keys` prints it). */
export function ed25519PublicKeyFromBase64(base64: string): KeyObject {
  const raw = Buffer.from(base64.trim(), 'base64');
  if (raw.length !== 32) throw new Error(`an ed25519 public key is 32 bytes, this is ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

// DER headers of ed25519 keys (RFC 8410): PKCS#8 private key and SubjectPublicKeyInfo.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function ed25519SeedBase64(privateKey: KeyObject): string {
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  return der.subarray(der.length - 32).toString('base64');
}

async function readKeyFile(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'does not exist' : e.code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be read (${e.message})`;
    throw new WorkerKeyError(file, `the ${what} file ${file} ${why}; create it with 'worker keys' or fix the path in the configuration`);
  }
}

/** Writes a new 0600 file unless the path is empty or the file exists; true when written. */
async function writeNew(file: string, content: () => Promise<string>): Promise<boolean> {
  if (!file) return false;
  try {
    await readFile(file);
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false; // exists but unreadable: the loader says so
  }
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    await writeFile(file, await content(), { mode: 0o600, flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false; // another process made it first
    throw new WorkerKeyError(file, `cannot write the key file ${file}: ${(err as Error).message}`);
  }
}
