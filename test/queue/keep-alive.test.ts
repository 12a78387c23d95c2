// shareKeepAliveConnections: clients built afterwards, each with its own credentials as a run's
// are, make their calls over shared connections instead of one new connection per call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { queueClient, shareKeepAliveConnections } from '../../lib/queue/taskcluster.ts';

test('clients of different runs reuse one connection for sequential calls', async () => {
  let connections = 0;
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ alive: true }));
  });
  server.on('connection', () => { connections += 1; });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const rootUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ping = (clientId: string) => (queueClient({ rootUrl, credentials: { clientId, accessToken: 'secret' } }) as unknown as { ping(): Promise<unknown> }).ping();
  try {
    await ping('before-1');
    await ping('before-2');
    assert.equal(connections, 2, "the library's default: one connection per call");
    shareKeepAliveConnections();
    shareKeepAliveConnections();
    for (let i = 0; i < 5; i++) await ping(`run-${i}`);
    assert.equal(connections, 3, 'five calls of five clients over one new connection');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
