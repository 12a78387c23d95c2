// The state directory holds every client's access token (in the database) and the root
// credentials: it is private to its owner on every start, whatever mode it had before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import taskcluster from 'taskcluster-client';
import { startEmbedded } from '../../lib/embedded/server.ts';
import { silentLog } from '../../lib/log/worker-log.ts';

const modeOf = (file: string) => statSync(file).mode & 0o777;
const octal = (mode: number) => `0${mode.toString(8)}`;

function assertPrivate(stateDir: string): void {
  assert.equal(octal(modeOf(stateDir)), '0700', 'the state directory');
  for (const name of ['embedded.sqlite', 'embedded.sqlite-wal', 'embedded.sqlite-shm', 'credentials.json', 'secrets.json']) {
    const file = path.join(stateDir, name);
    assert.ok(existsSync(file), `${name} exists`);
    assert.equal(octal(modeOf(file)), '0600', name);
  }
}

test('a pre-created 0755 state directory becomes 0700 and the database files are 0600', async () => {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'state-modes-'));
  const stateDir = path.join(parent, 'embedded');
  mkdirSync(stateDir, { mode: 0o755 });
  chmodSync(stateDir, 0o755); // whatever the umask
  try {
    const deployment = await startEmbedded({ stateDir, port: 0, log: silentLog });
    try {
      // a write, so the database has written its WAL
      const auth = new taskcluster.Auth({ rootUrl: deployment.rootUrl, credentials: deployment.credentials, retries: 0 });
      await auth.createClient('someone/else', { description: 'holds an access token', expires: taskcluster.fromNow('1 day'), scopes: [] });
      assertPrivate(stateDir);
    } finally {
      await deployment.close();
    }

    // A state directory left readable by an older version is closed up on the next start.
    chmodSync(stateDir, 0o755);
    chmodSync(path.join(stateDir, 'embedded.sqlite'), 0o644);
    const again = await startEmbedded({ stateDir, port: 0, log: silentLog });
    try {
      assertPrivate(stateDir);
    } finally {
      await again.close();
    }
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});
