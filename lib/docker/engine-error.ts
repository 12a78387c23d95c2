// Errors from the Docker engine, turned into one plain sentence a person can act on, with a
// `kind` code paths can branch on (never parse the message).

export type EngineErrorKind =
  | 'unreachable' // no daemon at the socket, or no permission to use it
  | 'not-found' // no such container, image, network, volume or path
  | 'conflict' // e.g. already stopped, name in use, removal in progress
  | 'bad-request' // the engine rejected the parameters
  | 'server'; // anything else the daemon reported

export class EngineError extends Error {
  readonly kind: EngineErrorKind;
  readonly statusCode: number | undefined;
  /** What the daemon itself said, without our "Docker could not ..." preface. */
  readonly detail: string;
  constructor(kind: EngineErrorKind, message: string, options: { statusCode?: number; cause?: unknown; detail?: string } = {}) {
    super(message, { cause: options.cause });
    this.name = 'EngineError';
    this.kind = kind;
    this.statusCode = options.statusCode;
    this.detail = options.detail ?? message;
  }
}

interface ModemError {
  code?: string;
  statusCode?: number;
  json?: unknown;
  reason?: string;
  message?: string;
}

/** The daemon's own message from a docker-modem error (its JSON body), trimmed. */
export function daemonMessage(err: unknown): string {
  const e = (err ?? {}) as ModemError;
  const json = e.json as { message?: unknown } | string | null | undefined;
  if (json && typeof json === 'object' && typeof json.message === 'string') return json.message.trim();
  if (typeof json === 'string' && json.trim()) return json.trim();
  if (Buffer.isBuffer(json)) return json.toString('utf8').trim();
  const message = typeof e.message === 'string' ? e.message : String(err);
  // docker-modem: "(HTTP code 404) no such container - <daemon message> "
  return message.replace(/^\(HTTP code \d+\) [^-]*- /, '').replace(/^\(HTTP code \d+\)\s*/, '').trim();
}

const socketErrors: Record<string, (socketPath: string) => string> = {
  ENOENT: (s) => `Docker engine not reachable at ${s}: is dockerd running? (make docker)`,
  ECONNREFUSED: (s) => `Docker engine not reachable at ${s}: is dockerd running? (make docker)`,
  ECONNRESET: (s) => `Docker engine at ${s} closed the connection: is dockerd healthy? (make docker)`,
  EACCES: (s) => `Permission denied on the Docker socket ${s}: run the worker as root or in the docker group`,
  EPERM: (s) => `Permission denied on the Docker socket ${s}: run the worker as root or in the docker group`,
};

/**
 * Maps any error from dockerode to an EngineError. `action` says what was being done
 * ("create container", "inspect image taskenv_pass:latest") and starts the message.
 */
export function toEngineError(err: unknown, action: string, socketPath: string): EngineError {
  if (err instanceof EngineError) return err;
  const e = (err ?? {}) as ModemError;
  const socketError = e.code ? socketErrors[e.code] : undefined;
  if (socketError) return new EngineError('unreachable', socketError(socketPath), { cause: err });
  const status = typeof e.statusCode === 'number' ? e.statusCode : undefined;
  const detail = daemonMessage(err);
  const message = `Docker could not ${action}: ${detail}`;
  const options = { statusCode: status, cause: err, detail };
  if (status === 404) return new EngineError('not-found', message, options);
  if (status === 409 || status === 304) return new EngineError('conflict', message, options);
  if (status === 400) return new EngineError('bad-request', message, options);
  return new EngineError('server', message, options);
}

/**
 * The EngineError saying the engine does not answer, if `err` is one or was caused by one (an
 * image failure, a load that broke off): the host's problem, never the task's.
 */
export function unreachableEngine(err: unknown): EngineError | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof EngineError && e.kind === 'unreachable') return e;
  }
  return undefined;
}
