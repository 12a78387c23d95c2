// payload.encryptedEnv: each entry is base64 of a binary OpenPGP message encrypted to the
// worker's public key, holding JSON {messageVersion: 1, taskId, startTime, endTime, name, value}
// (times in ms since the epoch). Decrypted and checked before the container exists; the checks
// and their order are docker-worker's: reserved name, name also in payload.env (or twice in
// encryptedEnv), message version, taskId, start time in the future, end time in the past.
//
// No error raised here ever holds a decrypted value: openpgp's messages are about packets and
// keys, JSON.parse's (which quote the text) are replaced, and the worker-log detail names the
// variable, never its value.
import { randomUUID } from 'node:crypto';
import type * as openpgp from 'openpgp';
import { openpgpLib } from './openpgp-lib.ts';

export interface EncryptedEnvMessage {
  messageVersion: 1;
  taskId: string;
  /** ms since the epoch: the value may not be used before. */
  startTime: number;
  /** ms since the epoch: the value may not be used after. */
  endTime: number;
  name: string;
  value: string;
}

export interface EncryptedEnvContext {
  taskId: string;
  /** payload.env: a name set there may not also come encrypted. */
  payloadEnv?: Readonly<Record<string, unknown>>;
  /** Names the worker sets itself (TASK_ID, RUN_ID, ...): lib/task/reserved-env.ts RESERVED_ENV_NAMES. */
  reservedNames: Iterable<string>;
  /** ms since the epoch (default Date.now()). */
  now?: number;
}

/**
 * A problem with one encryptedEnv entry. `message` is the task-log line; `detail` is for the
 * worker log (names the variable and times, never a value). A `violation` is docker-worker's
 * "secret data violation" with an incident id found in both logs; `unreadable` means the entry
 * could not be decoded or decrypted at all.
 */
export class EncryptedEnvError extends Error {
  override name = 'EncryptedEnvError';
  readonly kind: 'violation' | 'unreadable';
  readonly incidentId: string | undefined;
  readonly detail: string;
  constructor(kind: 'violation' | 'unreadable', message: string, detail: string, incidentId?: string) {
    super(message);
    this.kind = kind;
    this.detail = detail;
    this.incidentId = incidentId;
  }
}

/**
 * Decrypts and checks every entry; resolves to the variables by name, or rejects with the first
 * EncryptedEnvError in payload order. Never throws anything else for bad input.
 */
export async function decryptEncryptedEnv(entries: readonly string[], privateKey: openpgp.PrivateKey, context: EncryptedEnvContext): Promise<Record<string, string>> {
  const reserved = new Set(context.reservedNames);
  const now = context.now ?? Date.now();
  const messages = await Promise.allSettled(entries.map((entry, i) => decryptEntry(entry, privateKey, i, entries.length)));
  const env: Record<string, string> = {};
  for (const settled of messages) {
    if (settled.status === 'rejected') throw settled.reason;
    const data = settled.value;
    checkMessage(data, { reserved, payloadEnv: context.payloadEnv ?? {}, already: env, taskId: context.taskId, now });
    env[data.name] = data.value;
  }
  return env;
}

/** Encrypts one variable for a worker's public key: the base64 string that goes in payload.encryptedEnv. */
export async function encryptEnvVariable(publicKey: openpgp.Key, variable: Omit<EncryptedEnvMessage, 'messageVersion'>): Promise<string> {
  const text = JSON.stringify({ messageVersion: 1, ...variable } satisfies EncryptedEnvMessage);
  const lib = await openpgpLib();
  const message = await lib.createMessage({ text });
  const binary = await lib.encrypt({ message, encryptionKeys: publicKey, format: 'binary' });
  return Buffer.from(binary).toString('base64');
}

/** Reads an armored OpenPGP public (or private) key, as `worker keys --openpgp` prints it. */
export async function readPublicKey(armored: string): Promise<openpgp.Key> {
  return (await openpgpLib()).readKey({ armoredKey: armored });
}

const MAX_DECRYPTED_BYTES = 1024 * 1024;

interface DecryptedEntry {
  messageVersion: unknown;
  taskId: unknown;
  startTime: unknown;
  endTime: unknown;
  name: string;
  value: string;
}

async function decryptEntry(entry: unknown, privateKey: openpgp.PrivateKey, index: number, count: number): Promise<DecryptedEntry> {
  const which = `encryptedEnv entry ${index + 1} of ${count}`;
  const unreadable = (what: string, fix: string) => new EncryptedEnvError('unreadable', `${which} ${what}. ${fix}`, `${which} ${what}`);
  if (typeof entry !== 'string') throw unreadable('is not a string', 'Each entry must be base64 of an OpenPGP message (`worker encrypt-env` makes one).');
  const base64 = entry.replace(/\s+/g, '');
  if (base64.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 === 1) {
    throw unreadable('is not base64', 'Each entry must be base64 of a binary OpenPGP message (`worker encrypt-env` makes one).');
  }
  let message: openpgp.Message<Uint8Array>;
  try {
    message = await (await openpgpLib()).readMessage({ binaryMessage: Buffer.from(base64, 'base64') });
  } catch {
    throw unreadable('is not an OpenPGP message', 'Each entry must be base64 of a binary (not armored) OpenPGP message encrypted to this worker\'s public key (`worker encrypt-env` makes one).');
  }
  let text: string;
  try {
    // A compressed message could expand to anything: an env value has no business past 1 MiB.
    const { data } = await (await openpgpLib()).decrypt({ message, decryptionKeys: privateKey, format: 'utf8', config: { maxDecompressedMessageSize: MAX_DECRYPTED_BYTES } });
    text = data;
  } catch (err) {
    const m = (err as Error).message;
    if (/decompressed message size/i.test(m)) throw unreadable(`is larger than ${MAX_DECRYPTED_BYTES / 1024 / 1024} MiB once decompressed`, 'Keep encrypted values small; pass large secrets another way (e.g. the secrets service).');
    const reason = /session key|decryption key|no (?:matching|valid)/i.test(m) ? 'was not encrypted to this worker\'s key' : 'cannot be decrypted (the message is damaged or truncated)';
    throw unreadable(reason, 'Encrypt the value again with this worker pool\'s public key (`worker keys --openpgp` prints it; `worker encrypt-env` encrypts).');
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text, which is the secret: say nothing of it.
    throw unreadable('does not hold JSON', 'The encrypted text must be {"messageVersion": 1, "taskId", "startTime", "endTime", "name", "value"}.');
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw unreadable('does not hold a JSON object', 'The encrypted text must be {"messageVersion": 1, "taskId", "startTime", "endTime", "name", "value"}.');
  }
  const fields = data as Record<string, unknown>;
  if (typeof fields.name !== 'string' || !/^[^=\0]+$/.test(fields.name)) {
    throw unreadable('has no valid "name"', 'The encrypted JSON needs "name": the variable\'s name, a non-empty string without "=".');
  }
  if (typeof fields.value !== 'string') {
    throw unreadable(`has no string "value" (variable ${fields.name})`, 'The encrypted JSON needs "value": the variable\'s value as a string.');
  }
  return fields as unknown as DecryptedEntry;
}

interface CheckContext {
  reserved: ReadonlySet<string>;
  payloadEnv: Readonly<Record<string, unknown>>;
  already: Readonly<Record<string, string>>;
  taskId: string;
  now: number;
}

function checkMessage(data: DecryptedEntry, c: CheckContext): void {
  const name = data.name;
  if (c.reserved.has(name)) {
    violation('an environment variable conflicts with an existing environment variable', `the environment variable (${name}) conflicts with a reserved environment variable`);
  }
  if (Object.hasOwn(c.payloadEnv, name) || Object.hasOwn(c.already, name)) {
    violation('an environment variable has been duplicated in the task payload', `the environment variable (${name}) has been duplicated in the task payload`);
  }
  if (data.messageVersion !== 1) {
    violation('the version of the message is not supported', `the version of the message (${describe(data.messageVersion)}) for ${name} is not supported`);
  }
  if (data.taskId !== c.taskId) {
    violation('the taskId of the env payload does not match the taskId of the task', `the taskId of env payload (${describe(data.taskId)}) for ${name} does not match taskId of task (${c.taskId})`);
  }
  // docker-worker let a missing time through (undefined compares false); here it is a violation.
  if (!isTime(data.startTime)) {
    violation('the start time in the env payload is missing or not a number (ms since the epoch)', `the start time in the env payload for ${name} is ${describe(data.startTime)}`);
  }
  if (data.startTime > c.now) {
    violation('the start time in the env payload is in the future', `the start time date in the env payload for ${name} is in the future, now: ${c.now}, env start time date: ${data.startTime}`);
  }
  if (!isTime(data.endTime)) {
    violation('the end time in the env payload is missing or not a number (ms since the epoch)', `the end time in the env payload for ${name} is ${describe(data.endTime)}`);
  }
  if (c.now > data.endTime) {
    violation('the end time in the env payload is in the past', `the end time in the env payload for ${name} is in the past, now: ${c.now}, end time: ${data.endTime}`);
  }
}

function violation(reason: string, detail: string): never {
  const incidentId = randomUUID();
  throw new EncryptedEnvError('violation', `secret data violation -- ${reason}; incidentId: ${incidentId}`, `secret data violation -- ${detail}; incidentId: ${incidentId}`, incidentId);
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** A non-secret field for the worker log, kept short. */
function describe(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
