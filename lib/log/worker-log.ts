// The worker's own log: structured JSON lines (winston) on stderr, so stdout stays free
// for what a command prints for people (a rootUrl, a taskId).
import winston from 'winston';

export type WorkerLog = winston.Logger;

export function createWorkerLog(options: { level?: string; silent?: boolean } = {}): WorkerLog {
  return winston.createLogger({
    level: options.level ?? process.env.WORKER_LOG_LEVEL ?? 'info',
    silent: options.silent ?? false,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] })],
  });
}

/** A logger that drops everything: for library code used in tests. */
export const silentLog: WorkerLog = createWorkerLog({ silent: true });
