// Follows a task: waits until it runs, streams its live log to `out`, and returns the final
// status. Used by `worker submit --follow` and `make start`. The log is re-read from the
// start after each interruption (live log → backing log) and what was printed is skipped,
// so nothing is printed twice whatever the server does with Range or content-encoding.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Writable } from 'node:stream';
import type { QueueClient, TaskStatus } from '../queue/taskcluster.ts';

const RESOLVED = new Set(['completed', 'failed', 'exception']);

async function printFrom(url: string, offset: number, out: Writable): Promise<number> {
  const res = await fetch(url);
  if (!res.ok || !res.body) { await res.body?.cancel(); return 0; }
  let skip = offset;
  let written = 0;
  for await (const chunk of res.body) {
    let bytes = Buffer.from(chunk as Uint8Array);
    if (skip > 0) { const d = Math.min(skip, bytes.length); bytes = bytes.subarray(d); skip -= d; }
    if (bytes.length) { out.write(bytes); written += bytes.length; }
  }
  return written;
}

export async function followLog(queue: QueueClient, taskId: string, logUrl: string, out: Writable): Promise<TaskStatus> {
  let printed = 0;
  for (;;) {
    const { status } = await queue.status(taskId);
    if (RESOLVED.has(status.state)) {
      printed += await printFrom(logUrl, printed, out).catch(() => 0);
      return status;
    }
    if (status.state === 'running') printed += await printFrom(logUrl, printed, out).catch(() => 0);
    await sleep(200);
  }
}
