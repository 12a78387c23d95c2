// `worker keys`: creates the worker's OpenPGP and ed25519 private keys once (0600, under the
// state directory unless the configuration names their files) and prints the public keys:
// the armored OpenPGP key that task authors encrypt `encryptedEnv` values to, and the base64
// ed25519 key that chain-of-trust verifiers (scriptworker) list for this worker pool.
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import { createMissingWorkerKeys, loadWorkerKeys, workerKeyPaths, workerPublicKeys } from '../crypto/worker-keys.ts';

export const usage = 'worker keys [--state DIR] [--config FILE] [--openpgp | --ed25519]';

export async function keys(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      state: { type: 'string' }, config: { type: 'string' },
      openpgp: { type: 'boolean', default: false }, ed25519: { type: 'boolean', default: false },
    },
  });
  if (values.openpgp && values.ed25519) throw Object.assign(new Error(`--openpgp and --ed25519 print one key each; give at most one\nusage: ${usage}`), { name: 'ConfigError' });
  const config = loadConfig({ file: values.config, overrides: { stateDir: values.state } });
  const paths = workerKeyPaths(config);
  for (const file of await createMissingWorkerKeys(paths)) process.stderr.write(`created ${file}\n`);
  const loaded = await loadWorkerKeys(paths);
  const pub = workerPublicKeys(loaded);
  if (values.openpgp) process.stdout.write(pub.openpgpArmored);
  else if (values.ed25519) process.stdout.write(`${pub.ed25519Base64}\n`);
  else {
    process.stdout.write(`# OpenPGP public key (${paths.openpgp}): encryptedEnv values are encrypted to it\n${pub.openpgpArmored}`);
    process.stdout.write(`# ed25519 public key (${paths.ed25519}): verifies public/chain-of-trust.json.sig\n${pub.ed25519Base64}\n`);
  }
  return 0;
}
