// The API-bound part of a directory of small files, without Docker: the worker's ArtifactPublisher
// (lib/artifacts/upload.ts) against the floor's uploadOne (lib/raw-artifacts.ts), FILES buffers of
// 0.5-16 KiB (default 400) uploaded into a claimed run, PS parallelisms (default 1,4,8,16), two
// rounds each, the two sides taking turns going first. Not part of `make bench`:
//   node bench/upload-api.ts                       # a `worker serve` of its own
//   (TASKCLUSTER_ROOT_URL etc. set) node bench/upload-api.ts   # that deployment, root credentials
// Against a deployment with a short claim timeout keep FILES small: a round must end before
// the claim expires (nothing here reclaims), or the run's report is refused (409).
import { Readable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import PQueue from 'p-queue';
import { ArtifactPublisher } from '../lib/artifacts/upload.ts';
import { shareKeepAliveConnections } from '../lib/queue/taskcluster.ts';
import { rawRun, uploadOne } from './lib/raw-artifacts.ts';
import { startDeployment, type RootCredentials } from './lib/worker-process.ts';

shareKeepAliveConnections(); // as the worker does (lib/worker.ts)
const files = Number(process.env.FILES ?? 400);
let credentials: RootCredentials;
let stop = async () => {};
if (process.env.TASKCLUSTER_ROOT_URL) {
  credentials = { rootUrl: process.env.TASKCLUSTER_ROOT_URL, clientId: process.env.TASKCLUSTER_CLIENT_ID!, accessToken: process.env.TASKCLUSTER_ACCESS_TOKEN! };
} else {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'upload-api-'));
  const d = await startDeployment(stateDir);
  credentials = d.credentials;
  stop = async () => { await d.command.stop(); rmSync(stateDir, { recursive: true, force: true }); };
}
const seed = Buffer.alloc(16384, 7);
const bodies = Array.from({ length: files }, (_, i) => seed.subarray(0, ((i % 32) + 1) * 512));
async function measure(fn: () => Promise<void>) {
  const t0 = performance.now(); const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return { ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 };
}
try {
  for (const p of (process.env.PS ?? '1,4,8,16').split(',').map(Number)) {
    for (let r = 0; r < 2; r++) {
      const run = await rawRun(credentials, 'upload api');
      const worker = async () => {
        const publisher = new ArtifactPublisher({ rootUrl: credentials.rootUrl, taskId: run.taskId, runId: run.runId, credentials: () => run.credentials });
        const q = new PQueue({ concurrency: p });
        await Promise.all(bodies.map((b, i) => q.add(() => publisher.uploadStream(() => Readable.from([b]), b.length, { name: `public/w/f${i}.bin`, expires: run.expires }))));
      };
      const raw = async () => {
        const q = new PQueue({ concurrency: p });
        await Promise.all(bodies.map((b, i) => q.add(() => uploadOne(credentials, run, `public/r/f${i}.bin`, b.length, b))));
      };
      const [a, b] = r % 2 === 0 ? [await measure(raw), await measure(worker)] : [undefined, await measure(worker)];
      const rr = a ?? await measure(raw);
      console.log(`p${p}: raw ${Math.round(files / (rr.ms / 1000))} files/s (cpu ${Math.round(rr.cpuMs)} ms), worker publisher ${Math.round(files / (b.ms / 1000))} files/s (cpu ${Math.round(b.cpuMs)} ms), ${Math.round(rr.ms / b.ms * 100)} %`);
      await run.finish();
    }
  }
} finally {
  await stop();
}
