// Where a task run is: one value instead of a set of flags. Only forward: preparing ->
// running -> exited -> finishing (a run may skip straight to finishing). What an
// interruption does depends on it.
import type { Interrupt } from './outcome.ts';

export type Phase =
  /** Validate, plan, features' beforeCreate, devices, image, caches, container created. */
  | { name: 'preparing' }
  /** The container was started and has not exited. */
  | { name: 'running' }
  /** The container stopped: on its own (or by maxRunTime), or killed by an interruption. */
  | { name: 'exited'; onItsOwn: boolean }
  /** The result is decided: only cleanup, the log upload and the report are left. */
  | { name: 'finishing'; exitedOnItsOwn: boolean };

/** The container exited by itself (or by maxRunTime): its exit status is the task's result. */
export function exitedOnItsOwn(phase: Phase): boolean {
  return (phase.name === 'exited' && phase.onItsOwn) || (phase.name === 'finishing' && phase.exitedOnItsOwn);
}

/** The result is decided from here on; `finishing` remembers how the container ended. */
export function finishing(phase: Phase): Phase {
  return phase.name === 'finishing' ? phase : { name: 'finishing', exitedOnItsOwn: exitedOnItsOwn(phase) };
}

/**
 * Whether an interruption still changes the run: a shutdown after the container exited by
 * itself changes nothing (the worker finishes the run, uploads and report, before it stops);
 * a claim lost once the result is decided neither. A cancel always does.
 */
export function takesInterrupt(phase: Phase, reason: Interrupt): boolean {
  if (reason.kind === 'shutdown') return !exitedOnItsOwn(phase) && phase.name !== 'finishing';
  if (reason.kind === 'lost') return phase.name !== 'finishing';
  return true;
}
