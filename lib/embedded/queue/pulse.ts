// The Pulse messages the real queue publishes, built and validated here as it does. There is no
// message broker: a message is checked against the official exchange schema
// (`/schemas/queue/v1/<exchange>-message.json#`) and kept in a short list that tests read.
//
// The real queue validates every message it publishes, after the change is in its database.
// When a message fails its schema, the request that caused it answers 500 InternalServerError
// (the change stays), except where the real queue publishes best-effort and only logs: the
// task-defined and task-pending messages of createTask, task-exception and the retry's
// task-pending after reportException, and everything the time-driven resolvers publish. That is
// how `contentLength` in createArtifact broke workers on v106: the request schema takes it, the
// artifact-created message schema does not, so finishArtifact answered 500.
import { randomUUID } from 'node:crypto';
import type { Database } from '../store.ts';
import type { WorkerLog } from '../../log/worker-log.ts';
import { validatorFor } from '../api/references.ts';
import { ApiError } from '../api/errors.ts';

export type Exchange =
  | 'task-defined' | 'task-pending' | 'task-running' | 'artifact-created'
  | 'task-completed' | 'task-failed' | 'task-exception';

export interface PublishedMessage {
  exchange: Exchange;
  message: Record<string, unknown>;
  /** The task's routes: the real queue also publishes the message on `route.<route>` keys. */
  routes: string[];
}

/** Whether a failed message fails the request (`must`) or is only logged (`best-effort`). */
export type PublishMode = 'must' | 'best-effort';

const KEEP = 1000;

export class QueuePulse {
  readonly #published: PublishedMessage[] = [];
  readonly #rejected: { exchange: Exchange; errors: string[] }[] = [];
  readonly #rootUrl: () => string;
  readonly #log: WorkerLog;

  constructor(rootUrl: () => string, log: WorkerLog) {
    this.#rootUrl = rootUrl;
    this.#log = log;
  }

  /** Validates and records a message; a message that fails its schema throws (must) or is logged. */
  publish(exchange: Exchange, body: Record<string, unknown>, routes: readonly string[], mode: PublishMode): void {
    const message = { ...body, version: 1 }; // as the real queue's message builder
    const schema = `/schemas/queue/v1/${exchange}-message.json#`;
    const validate = validatorFor(schema);
    if (!validate(message)) {
      const errors = (validate.errors ?? []).map((e) => {
        const extra = e.keyword === 'additionalProperties' ? `: "${(e.params as { additionalProperty: string }).additionalProperty}"` : '';
        return `  * data${e.instancePath} ${e.message ?? e.keyword}${extra}`;
      });
      const incidentId = randomUUID();
      const detail = `Message validation failed. \nSchema Validation Failed!\nRejecting Schema: ${this.#rootUrl()}${schema}\nErrors:\n${errors.join('\n')}`;
      this.#log.error('queue message failed its exchange schema', { exchange, incidentId, errors, mode });
      this.#rejected.push({ exchange, errors });
      if (this.#rejected.length > KEEP) this.#rejected.shift();
      if (mode === 'best-effort') return;
      throw new ApiError('InternalServerError', `Internal Server Error, incidentId ${incidentId}. Error (not shown in production):\n\`\`\`\nError: ${detail}\n\`\`\``);
    }
    this.#published.push({ exchange, message, routes: [...routes] });
    if (this.#published.length > KEEP) this.#published.splice(0, this.#published.length - KEEP);
  }

  /** The last messages that failed their schema (at most 1000), with why. */
  rejected(): readonly { exchange: Exchange; errors: string[] }[] {
    return this.#rejected;
  }

  /** The last messages published (at most 1000), oldest first. */
  published(): readonly PublishedMessage[] {
    return this.#published;
  }
}

const pulses = new WeakMap<Database, QueuePulse>();

/** The one QueuePulse of a deployment (by its database, as taskEventsFor). */
export function queuePulseFor(db: Database, rootUrl: () => string, log: WorkerLog): QueuePulse {
  let pulse = pulses.get(db);
  if (!pulse) {
    pulse = new QueuePulse(rootUrl, log);
    pulses.set(db, pulse);
  }
  return pulse;
}
