// `worker keys`: creates the worker's OpenPGP and ed25519 private keys once (0600, under the
// state directory unless the configuration names their files) and prints the public keys:
// the armored OpenPGP key that task authors encrypt `encryptedEnv` values to, and the base64
// ed25519 key that chain-of-trust verifiers (scriptworker) list for this worker pool.
// `--host aws` reads the configuration as `worker start --host aws` does (the user-data's
// settings over the file), so key paths named in the user-data are the ones made and printed;
// the other `worker start` flags are accepted and unused, so that the keys unit can pass the
// same DOCKER_WORKER_OPTS.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.ts';
import { createHost } from './start.ts';
import { createMissingWorkerKeys, loadWorkerKeys, workerKeyPaths, workerPublicKeys } from '../crypto/worker-keys.ts';

export const usage = 'worker keys [--host local|aws] [--state DIR] [--config FILE] [--openpgp | --ed25519]';

export async function keys(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      state: { type: 'string' }, config: { type: 'string' },
      openpgp: { type: 'boolean', default: false }, ed25519: { type: 'boolean', default: false },
      host: { type: 'string', default: 'local' },
      // worker start's, for DOCKER_WORKER_OPTS: they do not change where the keys are.
      'provisioner-id': { type: 'string' }, 'worker-type': { type: 'string' }, 'worker-group': { type: 'string' },
      'worker-id': { type: 'string' }, capacity: { type: 'string' },
    },
  });
  if (values.host !== 'local' && values.host !== 'aws') {
    throw new ConfigError(`worker keys --host takes local or aws, not ${values.host} (under worker-runner the pool's configuration is known only when the worker starts: it makes missing keys then)\nusage: ${usage}`);
  }
  if (values.openpgp && values.ed25519) throw Object.assign(new Error(`--openpgp and --ed25519 print one key each; give at most one\nusage: ${usage}`), { name: 'ConfigError' });
  const overrides = { stateDir: values.state };
  let config = loadConfig({ file: values.config, overrides });
  if (values.host === 'aws') {
    const host = await createHost('aws', () => config);
    try {
      config = loadConfig({ file: values.config, host: (await host.configure()).settings, overrides });
    } finally {
      await host.close();
    }
  }
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
