// Bounded waits: cleanup has its own deadline, independent of the task's (DESIGN: "cleanup
// runs with its own deadline, not the task's cancelled signal").

/**
 * Resolves true once `work` settles (fulfilled or rejected), or false when `ms` pass first.
 * The work goes on in the background either way; its rejection is never left unhandled.
 */
export async function settleWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = work.then(() => true, () => true);
  const expired = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); });
  try {
    return await Promise.race([settled, expired]);
  } finally {
    clearTimeout(timer);
  }
}
