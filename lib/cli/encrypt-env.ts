// `worker encrypt-env`: encrypts environment variables for a worker pool's OpenPGP public key
// (as `worker keys --openpgp` prints it) and prints one base64 line per variable, each ready
// to go in payload.encryptedEnv. The task id must be known first (the value is bound to it).
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { encryptEnvVariable, readPublicKey } from '../crypto/encrypted-env.ts';

export const usage = 'worker encrypt-env --key PUBLIC_KEY.asc --task-id TASK_ID [--start TIME] [--end TIME] NAME=VALUE...\n' +
  '  TIME: ms since the epoch or an ISO date; --start defaults to now, --end to 24 hours after --start';

function usageError(message: string): Error {
  return Object.assign(new Error(`${message}\nusage: ${usage}`), { name: 'ConfigError' });
}

export function parseTime(text: string, flag: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) throw usageError(`${flag} ${JSON.stringify(text)} is neither ms since the epoch nor a date`);
  return ms;
}

export async function encryptEnv(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: { key: { type: 'string' }, 'task-id': { type: 'string' }, start: { type: 'string' }, end: { type: 'string' } },
  });
  if (!values.key) throw usageError('--key is required');
  if (!values['task-id']) throw usageError('--task-id is required');
  if (positionals.length === 0) throw usageError('give at least one NAME=VALUE');
  let armored: string;
  try { armored = readFileSync(values.key, 'utf8'); } catch (err) { throw usageError(`cannot read --key ${values.key}: ${(err as Error).message}`); }
  let key;
  try { key = await readPublicKey(armored); } catch (err) { throw usageError(`--key ${values.key} is not an armored OpenPGP key (${(err as Error).message})`); }
  const startTime = values.start === undefined ? Date.now() : parseTime(values.start, '--start');
  const endTime = values.end === undefined ? startTime + 24 * 3600_000 : parseTime(values.end, '--end');
  if (endTime <= startTime) throw usageError('--end must come after --start');
  for (const [i, pair] of positionals.entries()) {
    const eq = pair.indexOf('=');
    // Not quoted back: without its "=" the argument may well be the secret itself.
    if (eq <= 0) throw usageError(`argument ${i + 1} is not NAME=VALUE`);
    const blob = await encryptEnvVariable(key, { taskId: values['task-id'], startTime, endTime, name: pair.slice(0, eq), value: pair.slice(eq + 1) });
    process.stdout.write(`${blob}\n`);
  }
  return 0;
}
