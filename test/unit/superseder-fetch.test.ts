// Asking a superseder: the query, what is (not) sent, redirects, the size cap, the timeout and
// every kind of unusable answer, against a superseder on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetchSupersedes, parseSupersedes } from '../../lib/queue/superseder-fetch.ts';

const A = 'E5SBRfo-RfOIxh0V4187Qg';
const B = 'KGt8egfvRaqxczIRgOScaw';
let server: http.Server;
let base: string;
const seen: http.IncomingMessage[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    seen.push(req);
    const url = new URL(req.url!, 'http://x');
    const reply = (status: number, body: string, headers: Record<string, string> = {}) => { res.writeHead(status, headers); res.end(body); };
    switch (url.pathname) {
      case '/list': return reply(200, JSON.stringify({ supersedes: [A, url.searchParams.get('taskId'), B] }));
      case '/redirect': return reply(302, '', { location: `/list${url.search}` });
      case '/to-file': return reply(302, '', { location: 'file:///etc/passwd' });
      case '/loop': return reply(302, '', { location: '/loop' });
      case '/big': return reply(200, JSON.stringify({ supersedes: [A], pad: 'x'.repeat(100_000) }));
      case '/garbage': return reply(200, '<html>nope</html>');
      case '/500': return reply(500, 'oops');
      case '/slow': { const t = setTimeout(() => reply(200, JSON.stringify({ supersedes: [] })), 3000); res.on('close', () => clearTimeout(t)); return; }
      default: return reply(404, '');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => { server.closeAllConnections(); server.close(); });

test('the taskId is appended as a query parameter (kept beside the URL\'s own) and nothing of the worker is sent', async () => {
  assert.deepEqual(await fetchSupersedes(`${base}/list?key=linux64`, 'R3vEn5BeQ0e6Zm0oqvwN3A'), { ok: true, taskIds: [A, 'R3vEn5BeQ0e6Zm0oqvwN3A', B] });
  const req = seen.at(-1)!;
  assert.equal(req.url, '/list?key=linux64&taskId=R3vEn5BeQ0e6Zm0oqvwN3A');
  assert.equal(req.headers.authorization, undefined);
  assert.equal(req.headers.cookie, undefined);
});

test('http redirects are followed; a redirect elsewhere than http(s), or too many, is not', async () => {
  assert.equal((await fetchSupersedes(`${base}/redirect`, A)).ok, true);
  assert.deepEqual(await fetchSupersedes(`${base}/to-file`, A), { ok: false, reason: 'the superseder redirected to something other than an http(s) URL' });
  assert.deepEqual(await fetchSupersedes(`${base}/loop`, A), { ok: false, reason: 'more than 5 redirects' });
});

test('unusable answers say why: too large, not JSON, HTTP error, too slow, unreachable, not a URL', async () => {
  assert.deepEqual(await fetchSupersedes(`${base}/big`, A), { ok: false, reason: 'the answer is larger than 65536 bytes' });
  assert.deepEqual(await fetchSupersedes(`${base}/garbage`, A), { ok: false, reason: 'the answer is not JSON' });
  assert.deepEqual(await fetchSupersedes(`${base}/500`, A), { ok: false, reason: 'the superseder answered HTTP 500' });
  assert.deepEqual(await fetchSupersedes(`${base}/slow`, A, { timeoutMs: 300 }), { ok: false, reason: 'no answer within 0.3 s' });
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  closed.close();
  const unreachable = await fetchSupersedes(`http://127.0.0.1:${port}/`, A);
  assert.equal(unreachable.ok, false);
  assert.match((unreachable as { reason: string }).reason, /could not be reached \(.*ECONNREFUSED/);
  assert.deepEqual(await fetchSupersedes('ftp://example.com/list', A), { ok: false, reason: 'supersederUrl is not an http(s) URL' });
});

test('the list: taskIds only, duplicates once, at most 100', () => {
  assert.deepEqual(parseSupersedes(JSON.stringify({ supersedes: [A, B, A] })), { ok: true, taskIds: [A, B] });
  assert.deepEqual(parseSupersedes(JSON.stringify({ supersedes: [] })), { ok: true, taskIds: [] });
  assert.deepEqual(parseSupersedes('{"other": 1}'), { ok: false, reason: 'the answer has no "supersedes" list' });
  assert.deepEqual(parseSupersedes(JSON.stringify({ supersedes: [A, 'not a task'] })), { ok: false, reason: 'the list holds "not a task", which is not a taskId' });
  assert.equal(parseSupersedes(JSON.stringify({ supersedes: Array(101).fill(A) })).ok, false);
});
