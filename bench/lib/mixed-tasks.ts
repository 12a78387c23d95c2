// The mixed tasks of the soaks, each with the resolution it must end in: trivial ones, a failing
// exit, a file artifact, a cache; and with interruptions, a maxRunTime exceeded and a task the
// bench cancels once it was claimed.

export type MixedKind = 'trivial' | 'failing' | 'artifact' | 'cache' | 'maxRunTime' | 'cancel';

export interface MixedTask {
  kind: MixedKind;
  payload: Record<string, unknown>;
  scopes: string[];
  /** The run's resolution, as state or state/reasonResolved (exception/canceled). */
  expect: string;
}

export function mixedTask(kind: MixedKind, image: string): MixedTask {
  const sh = (script: string, maxRunTime = 60) => ({ image, command: ['/bin/sh', '-c', script], maxRunTime });
  switch (kind) {
    case 'trivial': return { kind, payload: { image, command: ['true'], maxRunTime: 60 }, scopes: [], expect: 'completed' };
    case 'failing': return { kind, payload: sh('echo failing; exit 2'), scopes: [], expect: 'failed' };
    case 'artifact': return { kind, payload: { ...sh('echo data > /tmp/a.txt'), artifacts: { 'public/a.txt': { type: 'file', path: '/tmp/a.txt' } } }, scopes: [], expect: 'completed' };
    case 'cache': return { kind, payload: { ...sh('echo $RANDOM >> /cache/n'), cache: { soak: '/cache' } }, scopes: ['docker-worker:cache:soak'], expect: 'completed' };
    // Stopped by the worker after 3 s: failed, as docker-worker resolves it.
    case 'maxRunTime': return { kind, payload: sh('sleep 60', 3), scopes: [], expect: 'failed' };
    // Cancelled by the bench once claimed: the queue resolves it, the worker reports nothing.
    case 'cancel': return { kind, payload: sh('sleep 60'), scopes: [], expect: 'exception/canceled' };
  }
}

/** The soak's mix (no interruptions): 1 in 10 fails, 1 in 10 uploads an artifact, 1 in 10 uses a cache. */
export function soakKind(i: number): MixedKind {
  return (['trivial', 'trivial', 'trivial', 'failing', 'trivial', 'trivial', 'artifact', 'trivial', 'trivial', 'cache'] as const)[i % 10]!;
}

/** With interruptions, of 20: 2 failing, 2 artifacts, 2 caches, 1 maxRunTime exceeded, 1 cancelled, 12 trivial. */
export function interruptedKind(i: number): MixedKind {
  return (['trivial', 'failing', 'artifact', 'cache', 'trivial', 'maxRunTime', 'trivial', 'trivial', 'trivial', 'cancel',
    'trivial', 'failing', 'artifact', 'cache', 'trivial', 'trivial', 'trivial', 'trivial', 'trivial', 'trivial'] as const)[i % 20]!;
}
