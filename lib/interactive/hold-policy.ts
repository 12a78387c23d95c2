// When an interactive task's container may exit after its command ended (pure): not before
// `minTimeMs` from the start, not while a session is open, not before `expiryMs` after the last
// session ended; and, whatever the sessions, early enough that maxRunTime does not kill it.
export interface HoldPolicy {
  /** When the container started (ms). */
  startedAt: number;
  minTimeMs: number;
  expiryMs: number;
  maxRunTimeMs: number;
}

export interface SessionState {
  open: number;
  /** When the last session ended (ms), if one did. */
  lastEndedAt?: number;
}

/** Released this long before maxRunTime: the container must exit on its own before the kill. */
export function maxRunTimeMarginMs(maxRunTimeMs: number): number {
  return Math.min(10_000, Math.floor(maxRunTimeMs / 10));
}

/** The latest release: maxRunTime minus its margin. */
export function latestRelease(policy: HoldPolicy): number {
  return policy.startedAt + policy.maxRunTimeMs - maxRunTimeMarginMs(policy.maxRunTimeMs);
}

/** When the hold ends, given the sessions. */
export function releaseAt(policy: HoldPolicy, sessions: SessionState): number {
  const latest = latestRelease(policy);
  if (sessions.open > 0) return latest;
  let at = policy.startedAt + policy.minTimeMs;
  if (sessions.lastEndedAt !== undefined) at = Math.max(at, sessions.lastEndedAt + policy.expiryMs);
  return Math.min(at, latest);
}
