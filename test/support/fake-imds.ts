// A fake EC2 instance metadata service on loopback, strict as IMDSv2 is: a GET without the
// session token from PUT /latest/api/token answers 401; a path it has no value for answers 404;
// a value may be given a delay (slow answers). Tests point host.metadataUrl at it.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';

export type MetadataValue = string | { delayMs: number; value: string };

export class FakeImds {
  readonly values = new Map<string, MetadataValue>();
  /** Every request: method, path, whether it carried a valid token, the status answered. */
  readonly requests: { method: string; path: string; token: boolean; status: number }[] = [];
  readonly #tokens = new Set<string>();
  readonly #server: http.Server;
  url = '';

  private constructor() {
    this.#server = http.createServer((req, res) => {
      const path = new URL(req.url!, 'http://x').pathname.replace(/\/{2,}/g, '/');
      const token = req.headers['x-aws-ec2-metadata-token'];
      const valid = typeof token === 'string' && this.#tokens.has(token);
      const answer = (status: number, body = '') => {
        this.requests.push({ method: req.method!, path, token: valid, status });
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(body);
      };
      if (req.method === 'PUT' && path === '/latest/api/token') {
        const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
        if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return answer(400);
        const t = randomBytes(16).toString('base64');
        this.#tokens.add(t);
        return answer(200, t);
      }
      if (req.method !== 'GET') return answer(405);
      if (!valid) return answer(401);
      const v = this.values.get(path);
      if (v === undefined) return answer(404);
      if (typeof v === 'string') return answer(200, v);
      const timer = setTimeout(() => answer(200, v.value), v.delayMs);
      res.on('close', () => clearTimeout(timer));
    });
  }

  static async start(values: Record<string, MetadataValue> = {}): Promise<FakeImds> {
    const f = new FakeImds();
    for (const [k, v] of Object.entries(values)) f.values.set(k, v);
    await new Promise<void>((r) => f.#server.listen(0, '127.0.0.1', r));
    f.url = `http://127.0.0.1:${(f.#server.address() as AddressInfo).port}`;
    return f;
  }

  /** A typical instance's metadata (paths under /latest/meta-data/), with the given user-data. */
  static instance(userData?: unknown): Record<string, MetadataValue> {
    return {
      '/latest/meta-data/instance-id': 'i-0abc1234def567890',
      '/latest/meta-data/instance-type': 'c5.2xlarge',
      '/latest/meta-data/placement/availability-zone': 'us-east-1b',
      '/latest/meta-data/placement/region': 'us-east-1',
      '/latest/meta-data/public-ipv4': '203.0.113.9',
      '/latest/meta-data/local-ipv4': '172.31.5.9',
      '/latest/meta-data/public-hostname': 'ec2-203-0-113-9.compute-1.amazonaws.com',
      ...(userData === undefined ? {} : { '/latest/user-data': typeof userData === 'string' ? userData : JSON.stringify(userData) }),
    };
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}
