// PUTs of files and streams to a plain HTTP server: the bytes arrive whole, a body of the
// wrong length fails (never hangs), and an early refusal ends the upload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { putFile, putStream, BodyLengthError } from '../../lib/artifacts/http-put.ts';
import { HttpStatusError } from '../../lib/retry/with-retries.ts';

let server: http.Server;
let base = '';
let dir = '';
const received = new Map<string, Buffer>();

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'http-put-'));
  server = http.createServer((req, res) => {
    if (req.url === '/refuse') { res.writeHead(403); res.end('no'); return; }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => { received.set(req.url!, Buffer.concat(chunks)); res.end(); });
    req.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => { server.closeAllConnections(); server.close(); await rm(dir, { recursive: true, force: true }); });

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

test('a file of several buffers arrives byte for byte, and every byte is seen on the way', async () => {
  const bytes = crypto.randomBytes(3 * 256 * 1024 + 12345);
  const file = path.join(dir, 'f.bin');
  await writeFile(file, bytes);
  const hash = crypto.createHash('sha256');
  await putFile(`${base}/f`, file, { headers: { 'Content-Length': bytes.length }, length: bytes.length, onData: (c) => hash.update(c) });
  assert.equal(sha(received.get('/f')!), sha(bytes));
  assert.equal(hash.digest('hex'), sha(bytes));
});

test('a file or stream longer or shorter than declared fails with BodyLengthError', async () => {
  const bytes = crypto.randomBytes(300 * 1024);
  const file = path.join(dir, 'g.bin');
  await writeFile(file, bytes);
  for (const declared of [bytes.length - 1, bytes.length + 1]) {
    const headers = { 'Content-Length': declared };
    await assert.rejects(putFile(`${base}/g`, file, { headers, length: declared }), BodyLengthError);
    await assert.rejects(putStream(`${base}/g`, Readable.from([bytes]), { headers, length: declared }), BodyLengthError);
  }
});

test('a server that refuses at once ends the upload with its status', async () => {
  const bytes = crypto.randomBytes(4 * 1024 * 1024);
  const file = path.join(dir, 'h.bin');
  await writeFile(file, bytes);
  await assert.rejects(putFile(`${base}/refuse`, file, { headers: { 'Content-Length': bytes.length }, length: bytes.length }),
    (err: unknown) => err instanceof HttpStatusError && err.statusCode === 403);
});
