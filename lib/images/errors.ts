// Why an image could not be made ready. `message` is one or two plain sentences for the task
// log; `kind` says whether trying again could help.
//   unauthorized  the task may not read the artifact (missing scope, 401/403)
//   not-found     no such index entry, task, artifact or stored data (404, error artifacts)
//   invalid       the data is not one docker image (bad format, corrupt, truncated, two images)
//   transient     network trouble or a 5xx answer: retried with backoff, then reported
//   engine        Docker refused the image
import { statusCodeOf } from '../retry/with-retries.ts';

export type ImageFailureKind = 'unauthorized' | 'not-found' | 'invalid' | 'transient' | 'engine';

export class ImageFailure extends Error {
  readonly kind: ImageFailureKind;
  constructor(kind: ImageFailureKind, message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'ImageFailure';
    this.kind = kind;
  }
  get retryable(): boolean {
    return this.kind === 'transient';
  }
}


/** The first line of a Taskcluster error message (they go on with the request details). */
export function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n').find((l) => l.trim() !== '')?.trim() ?? message;
}

/** An error from an API call or storage request, by its HTTP status. */
export function failureFromHttp(err: unknown, messages: { notFound: string; unauthorized: string; other: string }): ImageFailure {
  const status = statusCodeOf(err);
  if (status === 404 || status === 410) return new ImageFailure('not-found', messages.notFound, err);
  if (status === 401 || status === 403) return new ImageFailure('unauthorized', messages.unauthorized, err);
  if (status === undefined || status >= 500 || status === 408 || status === 429) return new ImageFailure('transient', messages.other, err);
  return new ImageFailure('invalid', messages.other, err);
}
