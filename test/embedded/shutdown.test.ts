// Shutting the embedded deployment down while its sweep is deleting expired data: close()
// waits for the sweep, so nothing is left half-deleted and no sweep fails on a closed database.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import winston from 'winston';
import taskcluster from 'taskcluster-client';
import { startEmbedded } from '../../lib/embedded/server.ts';

function capturingLog(): { log: winston.Logger; errors: () => unknown[] } {
  const lines: { level: string }[] = [];
  const stream = new Writable({ objectMode: true, write(info, _e, cb) { lines.push(info); cb(); } });
  const log = winston.createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream })] });
  return { log, errors: () => lines.filter((l) => l.level === 'error') };
}

/** Data files of the object service (blobs live in two-character subdirectories). */
function dataFiles(dir: string): number {
  let n = 0;
  for (const sub of readdirSync(dir)) {
    const full = path.join(dir, sub);
    if (sub !== 'tmp' && statSync(full).isDirectory()) n += readdirSync(full).length;
  }
  return n;
}

test('close() during a sweep waits for it: every expired object is deleted with its data, no sweep fails', async (t) => {
  // The clock (Date only; timers stay real) is moved past the objects' expiry once they are
  // all uploaded, however long that took on a busy machine.
  const start = Date.now();
  mock.timers.enable({ apis: ['Date'], now: start });
  t.after(() => mock.timers.reset());
  const stateDir = mkdtempSync(path.join(os.tmpdir(), 'shutdown-sweep-'));
  const { log, errors } = capturingLog();
  const deployment = await startEmbedded({ stateDir, port: 0, log, sweepIntervalSeconds: 0.05 });
  try {
    const object = new taskcluster.Object({ rootUrl: deployment.rootUrl, credentials: deployment.credentials, retries: 0 });
    const count = 150;
    const expires = new Date(start + 60_000);
    const names = Array.from({ length: count }, (_, i) => `sweep/object-${i}`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(names.slice(i, i + 25).map((name) => taskcluster.upload({
        projectId: 'proj', name, contentType: 'text/plain', contentLength: 5, expires, object,
        streamFactory: async () => Readable.from([Buffer.from('bytes')]), retries: 0,
      })));
    }
    const objectsDir = path.join(stateDir, 'objects');
    assert.equal(dataFiles(objectsDir), count);
    mock.timers.setTime(start + 120_000);

    // Wait until the sweep has started deleting, then shut down in the middle of it.
    let left = count;
    for (let polls = 0; left === count && polls < 1_000_000; polls++) {
      await new Promise((r) => setImmediate(r));
      left = dataFiles(objectsDir);
    }
    assert.ok(left < count, 'the sweep never started');
    assert.ok(left > 0, 'the sweep finished before close() could be called: use more objects');
    await deployment.close();

    assert.equal(dataFiles(objectsDir), 0, 'the sweep finished deleting before the database closed');
    assert.deepEqual(errors(), [], 'nothing failed');
  } finally {
    await deployment.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});
