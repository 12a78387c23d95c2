// `worker serve`: the embedded Taskcluster deployment on its own.
import { parseArgs } from 'node:util';
import { startEmbedded } from '../embedded/server.ts';
import { createWorkerLog } from '../log/worker-log.ts';
import { untilSignal } from './signals.ts';

export const usage = 'worker serve [--port N] [--state DIR] [--host 127.0.0.1] [--claim-timeout SECONDS]';

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
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number (0 picks a free one), not ${values.port}`);
  const claimTimeout = values['claim-timeout'] === undefined ? undefined : Number(values['claim-timeout']);
  if (claimTimeout !== undefined && !(claimTimeout > 0)) throw new Error('--claim-timeout must be a positive number of seconds');
  const log = createWorkerLog();
  const deployment = await startEmbedded({ stateDir: values.state!, port, host: values.host, log, claimTimeoutSeconds: claimTimeout });
  process.stdout.write(`${deployment.rootUrl}\n`);
  log.info('credentials written', { file: deployment.credentialsFile });
  const signal = await untilSignal();
  log.info('shutting down', { signal });
  await deployment.close();
  return 0;
}
