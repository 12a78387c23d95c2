// The taskclusterProxy on a gateway server on loopback in front of a fake Taskcluster service the test
// serves itself (also on loopback), which checks each request's Hawk signature with the
// credentials the proxy was given: signing with the newest credentials, both path layouts,
// query strings and escapes kept, a 100 MB body streamed (the service sees bytes before the
// client has sent them all), answers and redirects passed through unchanged, and connections
// from an address the proxy does not allow closed before a byte is read.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Hawk from '@hapi/hawk';
import { GatewayServer } from '../../lib/features/gateway-server.ts';
import { TaskclusterProxy } from '../../lib/features/taskcluster-proxy-server.ts';
import type { TaskCredentials } from '../../lib/task/types.ts';

const keys: Record<string, string> = { first: 'first-secret', second: 'second-secret' };
interface Seen { method: string; url: string; clientId: string; bytes: number; contentType: string | undefined }
const seen: Seen[] = [];
/** Called with the byte count as a body arrives at the service. */
let onBytes: ((bytes: number) => void) | undefined;

let service: http.Server;
let serviceUrl: string;
let gateway: GatewayServer;
let proxy: TaskclusterProxy;
let proxyUrl: string;
let credentials: TaskCredentials = { clientId: 'first', accessToken: keys.first! };
let allowed = true;

before(async () => {
  service = http.createServer(async (req, res) => {
    let clientId = '';
    try {
      const result = await Hawk.server.authenticate(req, (id) => ({ id, key: keys[id] ?? 'unknown', algorithm: 'sha256' }));
      clientId = result.credentials.id;
    } catch {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"code":"AuthenticationFailed"}');
      return;
    }
    if (req.url === '/api/queue/v1/early') {
      // Answers before reading the body (then drops what still comes): the answer must reach
      // the caller while it is still sending.
      res.writeHead(413, { 'content-type': 'application/json' }).end('{"code":"PayloadTooLarge"}');
      req.resume();
      return;
    }
    let bytes = 0;
    for await (const chunk of req) { bytes += (chunk as Buffer).length; onBytes?.(bytes); }
    seen.push({ method: req.method!, url: req.url!, clientId, bytes, contentType: req.headers['content-type'] });
    if (req.url!.startsWith('/api/queue/v1/redirect')) {
      res.writeHead(303, { location: 'http://127.0.0.1:9/elsewhere', 'x-service': 'fake' }).end('see other');
      return;
    }
    if (req.url!.startsWith('/api/queue/v1/forbidden')) {
      res.writeHead(403, { 'content-type': 'application/json' }).end('{"code":"InsufficientScopes"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-service': 'fake' }).end(JSON.stringify({ clientId, bytes, url: req.url }));
  });
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
  serviceUrl = `http://127.0.0.1:${(service.address() as AddressInfo).port}`;
  proxy = new TaskclusterProxy({ rootUrl: serviceUrl, credentials: () => credentials, version: 'test' });
  gateway = new GatewayServer({ allows: () => allowed });
  gateway.serve('taskcluster', proxy.handle);
  const address = await gateway.listen('127.0.0.1', 0);
  proxyUrl = `http://127.0.0.1:${address.port}`;
});

after(async () => {
  proxy?.close();
  await gateway?.close();
  await new Promise((resolve) => service?.close(resolve));
});

test('requests are signed with the credentials of the moment, in both path layouts, query and escapes kept', async () => {
  const res = await fetch(`${proxyUrl}/api/queue/v1/task/abc/artifacts/public%2Fx.txt?limit=2`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { clientId: 'first', bytes: 0, url: '/api/queue/v1/task/abc/artifacts/public%2Fx.txt?limit=2' });
  assert.equal(res.headers.get('x-taskcluster-endpoint'), `${serviceUrl}/api/queue/v1/task/abc/artifacts/public%2Fx.txt?limit=2`);
  assert.equal(res.headers.get('x-taskcluster-proxy-perm-clientid'), 'first');
  credentials = { clientId: 'second', accessToken: keys.second! };
  const legacy = await fetch(`${proxyUrl}/index/v1/task/a.b`);
  assert.deepEqual(await legacy.json(), { clientId: 'second', bytes: 0, url: '/api/index/v1/task/a.b' });
});

test('a POST body without a Content-Type is sent as JSON; service errors and redirects reach the caller unchanged', async () => {
  const posted = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${proxyUrl}/api/queue/v1/thing`, { method: 'POST', headers: { 'content-length': 2 } }, (res) => { res.resume(); resolve(res.statusCode!); });
    req.on('error', reject);
    req.end('{}');
  });
  assert.equal(posted, 200);
  assert.equal(seen.at(-1)?.contentType, 'application/json');
  const forbidden = await fetch(`${proxyUrl}/api/queue/v1/forbidden`);
  assert.equal(forbidden.status, 403);
  assert.equal(await forbidden.text(), '{"code":"InsufficientScopes"}');
  const redirect = await fetch(`${proxyUrl}/api/queue/v1/redirect`, { redirect: 'manual' });
  assert.equal(redirect.status, 303);
  assert.equal(redirect.headers.get('location'), 'http://127.0.0.1:9/elsewhere');
  assert.equal(redirect.headers.get('x-service'), 'fake');
});

test('a 100 MB body is streamed: the service sees bytes before the caller has sent half of it', async () => {
  const total = 100 * 1024 * 1024;
  const half = total / 2;
  const chunk = Buffer.alloc(1024 * 1024, 7);
  let serviceSawBytes!: () => void;
  const arrived = new Promise<void>((resolve) => { serviceSawBytes = resolve; });
  onBytes = (bytes) => { if (bytes > 0) serviceSawBytes(); };
  try {
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${proxyUrl}/api/object/v1/upload`, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'content-length': total } }, (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      (async () => {
        let sent = 0;
        const write = (b: Buffer) => new Promise<void>((resolve) => { if (req.write(b)) resolve(); else req.once('drain', () => resolve()); });
        while (sent < half) { await write(chunk); sent += chunk.length; }
        // A proxy that buffered the body would send nothing on until all of it had arrived.
        await arrived;
        while (sent < total) { await write(chunk); sent += chunk.length; }
        req.end();
      })().catch(reject);
    });
    const { status, body } = await answer;
    assert.equal(status, 200);
    assert.equal(JSON.parse(body).bytes, total);
  } finally {
    onBytes = undefined;
  }
});

test('a service that answers before it has read the body: the answer reaches the caller while it still sends', async () => {
  let sent = 0;
  const answer = await new Promise<{ status: number; body: string; sentWhenAnswered: number }>((resolve, reject) => {
    const req = http.request(`${proxyUrl}/api/queue/v1/early`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': 64 * 1024 * 1024 } }, (res) => {
      const sentWhenAnswered = sent;
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, body, sentWhenAnswered }));
    });
    req.on('error', reject);
    const chunk = Buffer.alloc(1024 * 1024);
    const more = () => { while (sent < 64 && req.write(chunk)) sent++; if (sent < 64) { sent++; req.once('drain', more); } else req.end(); };
    more();
  });
  assert.deepEqual({ status: answer.status, body: answer.body }, { status: 413, body: '{"code":"PayloadTooLarge"}' });
  assert.ok(answer.sentWhenAnswered < 64, `answered after ${answer.sentWhenAnswered} of 64 MiB were sent`);
});

test('unknown services, host names and /credentials are answered by the proxy itself', async () => {
  const before = seen.length;
  const unknown = await fetch(`${proxyUrl}/api/nosuch/v1/ping`);
  assert.equal(unknown.status, 404);
  assert.match(await unknown.text(), /^Unknown Taskcluster service "nosuch": the taskclusterProxy forwards requests to auth, /);
  const host = await fetch(`${proxyUrl}/example.com/v1/ping`);
  assert.equal(host.status, 404);
  const creds = await fetch(`${proxyUrl}/credentials`, { method: 'PUT', body: '{"clientId":"x","accessToken":"y"}' });
  assert.equal(creds.status, 403);
  assert.equal(seen.length, before, 'none of these reached the service');
});

test('/bewit answers 303 to the URL signed with the current credentials', async () => {
  const res = await fetch(`${proxyUrl}/bewit`, { method: 'POST', body: `${serviceUrl}/api/queue/v1/task/abc?x=1`, redirect: 'manual' });
  assert.equal(res.status, 303);
  const location = new URL(res.headers.get('location')!);
  assert.equal(location.searchParams.get('x'), '1');
  const bewit = Buffer.from(location.searchParams.get('bewit')!, 'base64url').toString();
  assert.match(bewit, /^second\\/);
});

test('a connection from an address the proxy does not allow is closed unanswered', async () => {
  allowed = false;
  const before = seen.length;
  try {
    // A new connection (the check is made once per connection, when it opens).
    await assert.rejects(new Promise((resolve, reject) => {
      http.get(`${proxyUrl}/api/queue/v1/ping`, { agent: false }, resolve).on('error', reject);
    }), { code: 'ECONNRESET' });
    assert.equal(seen.length, before);
  } finally {
    allowed = true;
  }
});
