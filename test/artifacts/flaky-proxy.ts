// A tiny HTTP proxy in front of a deployment that answers the first N storage PUTs itself with a chosen
// status (as a storage outage would) and forwards everything else. URLs in forwarded JSON
// bodies and Location headers are rewritten to point at the proxy, so signed PUT URLs handed
// out by the queue and the object service come back through it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FlakyProxy { url: string; putAttempts: number; failedPuts: number; close(): Promise<void> }

export async function startFlakyProxy(target: string, failPuts: number, status: number): Promise<FlakyProxy> {
  const targetUrl = new URL(target);
  let proxyOrigin = '';
  const state: FlakyProxy = { url: '', putAttempts: 0, failedPuts: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    if (req.method === 'PUT' && !req.url?.startsWith('/api/')) { // storage PUTs, not API calls
      state.putAttempts++;
      if (state.failedPuts < failPuts) {
        state.failedPuts++;
        req.resume();
        req.on('end', () => { res.writeHead(status, { 'content-type': 'text/plain' }); res.end(`injected ${status}`); });
        return;
      }
    }
    const upstream = http.request({
      host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers: req.headers,
    }, (up) => {
      const headers = { ...up.headers };
      if (typeof headers.location === 'string') headers.location = headers.location.replaceAll(targetUrl.origin, proxyOrigin);
      if (!String(headers['content-type'] ?? '').includes('json')) {
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      up.on('data', (c: Buffer) => chunks.push(c));
      up.on('end', () => {
        const body = Buffer.from(Buffer.concat(chunks).toString('utf8').replaceAll(targetUrl.origin, proxyOrigin));
        delete headers['transfer-encoding'];
        headers['content-length'] = String(body.length);
        res.writeHead(up.statusCode ?? 502, headers);
        res.end(body);
      });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxyOrigin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.url = proxyOrigin;
  state.close = () => new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
  return state;
}
