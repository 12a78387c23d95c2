// The worker's own Taskcluster credentials (not a task's), replaceable while the worker runs:
// worker-runner sends new ones before the old ones expire (`new-credentials`), and from then on
// every call the worker makes for itself (claimWork, status, purge requests, scope expansion,
// claimTask for superseding) must carry them.
//
// taskcluster-client fixes a client's credentials when it is built (the certificate of
// temporary credentials goes into the Hawk `ext` in the constructor), so replacing the
// credentials means building new clients. `client(build)` hands out one object that stands for
// "the client of the current credentials": each property read goes to a client built from the
// credentials current at that moment (rebuilt at most once per replacement), so the holders of
// that object — the claim loop, the reclaimer's status checks, the purge poller — need not know.
import type { Credentials } from './taskcluster.ts';

/** Clients a credentials-following client was built as before the current one (see abortClient). */
export const EARLIER_CLIENTS: unique symbol = Symbol('earlier clients');

export class WorkerCredentials {
  #current: Credentials;
  #version = 0;

  constructor(initial: Credentials) {
    this.#current = { ...initial };
  }

  current(): Credentials { return this.#current; }

  replace(next: Credentials): void {
    if (!next.clientId || !next.accessToken) throw new Error('new credentials need a clientId and an accessToken');
    this.#current = { clientId: next.clientId, accessToken: next.accessToken, ...(next.certificate ? { certificate: next.certificate } : {}) };
    this.#version += 1;
  }

  /** An object that behaves as `build(current credentials)`, rebuilt after each replace(). */
  client<T extends object>(build: (credentials: Credentials) => T): T {
    let builtFor = this.#version;
    let current = build(this.#current);
    const earlier: T[] = [];
    const latest = (): T => {
      if (builtFor !== this.#version) {
        earlier.push(current);
        if (earlier.length > 4) earlier.shift();
        current = build(this.#current);
        builtFor = this.#version;
      }
      return current;
    };
    return new Proxy({} as T, {
      get: (_target, key) => {
        if (key === EARLIER_CLIENTS) return earlier;
        const client = latest();
        const value = Reflect.get(client, key, client);
        return typeof value === 'function' ? value.bind(client) : value;
      },
      has: (_target, key) => Reflect.has(latest(), key),
    });
  }
}
