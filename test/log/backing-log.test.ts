// The live log artifacts against the embedded deployment: live.log first redirects to the
// worker's live log server, and at the end links to the uploaded live_backing.log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { TaskLog } from '../../lib/log/task-log.ts';
import { LiveLogServer } from '../../lib/log/live-log-server.ts';
import { publishLiveLog, publishBackingLog } from '../../lib/log/backing-log.ts';
import { startDeployment, claimedRun, publisherFor, downloadArtifact, type Deployment } from '../artifacts/embedded-run.ts';

let d: Deployment;
let liveLogs: LiveLogServer;
before(async () => { d = await startDeployment(); liveLogs = await LiveLogServer.start({ graceSeconds: 30 }); });
after(async () => { await liveLogs.close(); await d.close(); });

function rawGet(url: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('latin1') }));
    }).on('error', reject);
  });
}

for (const storageType of ['object', 's3'] as const) {
  test(`${storageType}: live.log is a reference to the live log, then a link to the uploaded backing log`, async () => {
    const run = await claimedRun(d);
    const publisher = publisherFor(d.rootUrl, run, { storageType });
    const log = await TaskLog.create({ secrets: ['sekrit-token'] });
    try {
      const liveUrl = liveLogs.publish(log);
      await publishLiveLog(publisher, liveUrl, run.expires);
      log.info('=== Task Starting ===');
      log.write('compiling with sekrit-token...\n');

      const artifactUrl = d.queue.buildUrl(d.queue.getArtifact, run.taskId, run.runId, 'public/logs/live.log');
      const during = await fetch(artifactUrl, { redirect: 'manual' });
      assert.equal(during.status, 303);
      assert.equal(during.headers.get('location'), liveUrl);

      log.footer(true, 0, new Date(Date.now() - 1500));
      const uploaded = await publishBackingLog(publisher, log, run.expires);
      assert.equal(uploaded.name, 'public/logs/live_backing.log');
      assert.equal(uploaded.contentEncoding, storageType === 's3' ? 'gzip' : 'identity');

      const listed = await d.queue.listArtifacts(run.taskId, run.runId);
      const types = Object.fromEntries(listed.artifacts.map((a: { name: string; storageType: string }) => [a.name, a.storageType]));
      assert.deepEqual(types, { 'public/logs/live.log': 'link', 'public/logs/live_backing.log': storageType });

      for (const name of ['public/logs/live.log', 'public/logs/live_backing.log']) {
        const got = await downloadArtifact(d.queue, run.taskId, name);
        assert.match(got.text, /^\[taskcluster .*\] === Task Starting ===\ncompiling with \[\*\*\*\*\*\]\.\.\.\n\[taskcluster .*\] Successful task run with exit code: 0 completed in 1\.5\d* seconds\n$/);
        assert.match(got.contentType, /^text\/plain/);
      }
      if (storageType === 's3') {
        const redirect = await fetch(d.queue.buildUrl(d.queue.getArtifact, run.taskId, run.runId, 'public/logs/live_backing.log'), { redirect: 'manual' });
        const stored = await rawGet(redirect.headers.get('location')!);
        assert.equal(stored.headers['content-encoding'], 'gzip');
      }
      // The live URL still serves the complete log during the grace period.
      const live = await rawGet(liveUrl);
      assert.equal(live.status, 200);
      assert.match(live.body, /Successful task run/);
    } finally {
      await log.release();
    }
  });
}
