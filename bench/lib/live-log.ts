// Reads a task's live log the way a person's browser does: the queue's `public/logs/live.log`
// artifact redirects to the worker's live log server, which streams the log as it grows.
// Counts bytes and notes when a marker line (e.g. '=== Task Finished ===') went by.
import http from 'node:http';
import type { WorkerProcess } from './worker-process.ts';
import { sleep } from './context.ts';

export interface LiveLogRead { bytes: number; markerAt?: number; endAt: number; firstByteAt?: number }

/** The live log server URL of a running task (waits until the artifact exists). */
export async function liveLogUrl(worker: WorkerProcess, taskId: string, timeoutMs = 60_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const url = worker.queue.buildSignedUrl(worker.queue.getArtifact, taskId, 0, 'public/logs/live.log') as string;
    const res = await fetch(url, { redirect: 'manual' });
    await res.body?.cancel();
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) return location;
    if (Date.now() > end) throw new Error(`live.log of ${taskId} not available after ${timeoutMs} ms (last status ${res.status})`);
    await sleep(20);
  }
}

export function readLiveLog(url: string, marker: string): Promise<LiveLogRead> {
  const needle = Buffer.from(marker);
  return new Promise((resolve, reject) => {
    const result: LiveLogRead = { bytes: 0, endAt: 0 };
    let tail = Buffer.alloc(0);
    const req = http.get(url, (res) => {
      if (res.statusCode !== 200 && res.statusCode !== 206) { res.resume(); reject(new Error(`live log answered ${res.statusCode}`)); return; }
      res.on('data', (chunk: Buffer) => {
        const now = Date.now();
        result.firstByteAt ??= now;
        result.bytes += chunk.length;
        if (result.markerAt === undefined) {
          const edge = Buffer.concat([tail, chunk.subarray(0, needle.length)]);
          if (edge.includes(needle) || chunk.includes(needle)) result.markerAt = now;
          tail = Buffer.from(chunk.subarray(Math.max(0, chunk.length - needle.length)));
        }
      });
      res.on('end', () => { result.endAt = Date.now(); resolve(result); });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
