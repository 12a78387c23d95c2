// Engine.removeContainer when the engine answers "removal already in progress" (409): done is
// when the container is gone. The real engine gives that answer only in a race
// (test/docker/engine.test.ts tries it); here an HTTP server on a unix socket plays the engine
// so that the 409 comes every time and the wait is seen to last until the container is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../../lib/docker/engine.ts';

test('a 409 "removal already in progress" is waited on: removeContainer returns after the engine says the container is gone, not before', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-engine-'));
  const socketPath = path.join(dir, 'docker.sock');
  const seen: string[] = [];
  let inspectsAfterConflict = 0;
  let conflictAnswered = false;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://engine');
    seen.push(`${req.method} ${url.pathname.replace(/^\/v[\d.]+/, '')}`);
    const json = (status: number, body: unknown) => { res.writeHead(status, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(body)); };
    if (req.method === 'DELETE') { conflictAnswered = true; return json(409, { message: 'removal of container abc is already in progress' }); }
    if (req.method === 'GET' && url.pathname.endsWith('/containers/abc/json')) {
      if (!conflictAnswered) return json(200, { Id: 'abc', Mounts: [] });
      // Still being removed for three more looks, then gone.
      if (++inspectsAfterConflict <= 3) return json(200, { Id: 'abc', Mounts: [] });
      return json(404, { message: 'No such container: abc' });
    }
    json(500, { message: `unexpected ${req.method} ${url.pathname}` });
  });
  server.listen(socketPath);
  await once(server, 'listening');
  try {
    await new Engine({ socketPath }).removeContainer('abc');
    assert.equal(inspectsAfterConflict, 4, 'it looked until the engine said the container was gone');
    assert.deepEqual(seen, ['GET /containers/abc/json', 'DELETE /containers/abc', ...Array(4).fill('GET /containers/abc/json')]);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
