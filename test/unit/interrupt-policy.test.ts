// What an interruption does to a run, by its phase (pure policy of phase.ts and outcome.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { finishing, takesInterrupt, exitedOnItsOwn, type Phase } from '../../lib/task/phase.ts';
import { applyInterrupt, exitOutcome, type Interrupt } from '../../lib/task/outcome.ts';

const cancel: Interrupt = { kind: 'cancel', message: 'cancelled' };
const shutdown: Interrupt = { kind: 'shutdown' };
const lost: Interrupt = { kind: 'lost', message: 'gone' };
const phases: Record<string, Phase> = {
  preparing: { name: 'preparing' },
  running: { name: 'running' },
  killed: { name: 'exited', onItsOwn: false },
  exited: { name: 'exited', onItsOwn: true },
  finishing: finishing({ name: 'exited', onItsOwn: true }),
};

test('which interruptions still change the run, phase by phase', () => {
  const table = Object.fromEntries(Object.entries(phases).map(([n, p]) => [n, [cancel, shutdown, lost].map((r) => takesInterrupt(p, r))]));
  assert.deepEqual(table, {
    preparing: [true, true, true],
    running: [true, true, true],
    killed: [true, true, true],
    exited: [true, false, true],
    finishing: [true, false, false],
  });
});

test('finishing remembers whether the container exited on its own', () => {
  assert.equal(exitedOnItsOwn(finishing({ name: 'exited', onItsOwn: true })), true);
  assert.equal(exitedOnItsOwn(finishing({ name: 'running' })), false);
  assert.equal(exitedOnItsOwn(finishing(finishing({ name: 'exited', onItsOwn: true }))), true);
});

test('what an interruption makes of the outcome', () => {
  const completed = { kind: 'completed' } as const;
  assert.deepEqual(applyInterrupt(completed, undefined, false), completed);
  assert.deepEqual(applyInterrupt(completed, cancel, true), { kind: 'cancelled' });
  assert.deepEqual(applyInterrupt(completed, shutdown, true), completed, 'exited on its own: the result stands');
  assert.deepEqual(applyInterrupt(completed, shutdown, false), { kind: 'exception', reason: 'worker-shutdown' });
  assert.deepEqual(applyInterrupt(completed, lost, false), { kind: 'exception', reason: 'internal-error' });
});

test('exit statuses: 0 completes, a listed retry status is intermittent, the rest fail', () => {
  assert.deepEqual(exitOutcome({ exitCode: 0, timedOut: false }, []), { kind: 'completed' });
  assert.deepEqual(exitOutcome({ exitCode: 4, timedOut: false }, [4]), { kind: 'exception', reason: 'intermittent-task' });
  assert.deepEqual(exitOutcome({ exitCode: 4, timedOut: true }, [4]), { kind: 'failed' });
  assert.deepEqual(exitOutcome({ exitCode: 0, timedOut: false, startError: 'no such command' }, []), { kind: 'failed' });
});
