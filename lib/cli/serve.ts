// `worker serve`: the embedded Taskcluster deployment on its own. Prints the rootUrl on
// stdout once DIR/credentials.json is written and the server accepts connections; on SIGINT
// or SIGTERM it stops, answers waiting claimWork calls with no tasks, and exits 0.
import { parseArgs } from 'node:util';
import { startEmbedded } from '../embedded/server.ts';
import { createWorkerLog } from '../log/worker-log.ts';
import { untilSignal } from './signals.ts';

export const usage = 'worker serve [--port N] [--state DIR] [--host 127.0.0.1] [--claim-timeout SECONDS]';

/** A bad flag: main prints the message alone and exits 2. */
const usageError = (message: string) => Object.assign(new Error(`${message}\nusage: ${usage}`), { name: 'ConfigError' });

export async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '8080' },
      state: { type: 'string', default: '.state/embedded' },
      host: { type: 'string', default: '127.0.0.1' },
      'claim-timeout': { type: 'string' },
    },
  });
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port!) || port > 65535) throw usageError(`--port must be a port number (0 picks a free one), not ${values.port}`);
  const rawTimeout = values['claim-timeout'];
  const claimTimeout = rawTimeout === undefined ? undefined : Number(rawTimeout);
  if (claimTimeout !== undefined && !(/^\d+$/.test(rawTimeout!) && claimTimeout >= 1)) {
    throw usageError(`--claim-timeout must be a whole number of seconds, at least 1 (a claim must last long enough to be reclaimed), not ${rawTimeout}`);
  }
  const log = createWorkerLog();
  const deployment = await startEmbedded({ stateDir: values.state!, port, host: values.host, log, claimTimeoutSeconds: claimTimeout });
  process.stdout.write(`${deployment.rootUrl}\n`);
  log.info('credentials written', { file: deployment.credentialsFile });
  const signal = await untilSignal();
  log.info('shutting down', { signal });
  await deployment.close();
  return 0;
}
