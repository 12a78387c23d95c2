// The raw attach: frames (no TTY) split wherever the socket reads happen to end, a sink that
// asks for a wait, and the engine refusing (no such container).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { AttachedOutput, attachOutput, type OutputSink } from '../../lib/docker/attach-socket.ts';
import { EngineError } from '../../lib/docker/engine-error.ts';
import { testEngine } from '../support/docker.ts';

function frame(stream: 1 | 2, text: string): Buffer {
  const body = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** A sink that keeps copies (the attach reuses its read buffer) and may say it is full. */
function collector(full = false): OutputSink & { text(): string } {
  const kept: Buffer[] = [];
  return { take: (data) => { kept.push(Buffer.from(data)); return !full; }, room: () => Promise.resolve(), text: () => Buffer.concat(kept).toString() };
}

test('frames are unpacked whatever the read boundaries, stdout and stderr merged in order', () => {
  const wire = Buffer.concat([frame(1, 'first '), frame(2, 'to stderr '), frame(1, ''), frame(1, 'x'.repeat(300)), frame(1, ' last')]);
  const expected = `first to stderr ${'x'.repeat(300)} last`;
  for (let cut = 1; cut < wire.length; cut++) {
    for (const size of [cut, 7]) {
      const sink = collector();
      const output = new AttachedOutput(sink, true);
      // One reused read buffer, as the socket gives it: overwritten after each read.
      const readBuffer = Buffer.alloc(wire.length);
      for (let at = 0; at < wire.length; at += size) {
        const n = wire.copy(readBuffer, 0, at, Math.min(at + size, wire.length));
        output.received(readBuffer.subarray(0, n));
        readBuffer.fill(0xff);
      }
      assert.equal(sink.text(), expected, `reads of ${size} bytes`);
    }
  }
});

test('with a TTY the bytes pass as they are', () => {
  const sink = collector();
  const output = new AttachedOutput(sink, false);
  const raw = Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.from('plain\r\n')]);
  output.received(raw);
  assert.equal(sink.text(), raw.toString());
});

test('a full sink stops the reading until it has room; a dropped output reads on', () => {
  const output = new AttachedOutput(collector(true), false);
  let data = 0;
  output.on('data', () => data++);
  assert.equal(output.received(Buffer.from('abc')), false, 'a full sink pauses the socket');
  output.drop();
  assert.equal(output.received(Buffer.from('def')), true, 'dropped: read on');
  assert.equal(data, 2, 'dropped bytes still count as output arriving (the end is waited for)');
});

/** A unix socket that answers one attach as `answer` says, then closes. */
async function fakeEngine(answer: (socket: net.Socket) => Promise<void>): Promise<{ socketPath: string; request: Promise<string>; close(): void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fake-engine-'));
  const socketPath = path.join(dir, 'docker.sock');
  let gotRequest!: (text: string) => void;
  const request = new Promise<string>((resolve) => { gotRequest = resolve; });
  const server = net.createServer((socket) => {
    let text = '';
    socket.on('data', (d) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) { gotRequest(text); void answer(socket).then(() => socket.end()); }
    });
  });
  server.listen(socketPath);
  await once(server, 'listening');
  return { socketPath, request, close: () => { server.close(); rmSync(dir, { recursive: true, force: true }); } };
}

test('over a socket: the upgrade answer, output in the same packet as its head, dribbled frames, then the end', async () => {
  const pieces = Array.from({ length: 200 }, (_, i) => frame(i % 2 ? 2 : 1, `piece ${i}\n`));
  const engine = await fakeEngine(async (socket) => {
    socket.write(Buffer.concat([Buffer.from('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n'), frame(1, 'first\n')]));
    for (const piece of pieces) {
      socket.write(piece.subarray(0, 3));
      socket.write(piece.subarray(3));
      if (Math.random() < 0.2) await new Promise((resolve) => setTimeout(resolve, 1));
    }
  });
  try {
    const sink = collector();
    const output = await attachOutput(engine.socketPath, 'abc123', { tty: false, sink });
    await once(output, 'end');
    assert.equal(sink.text(), `first\n${pieces.map((_, i) => `piece ${i}\n`).join('')}`);
    assert.match(await engine.request, /^POST \/containers\/abc123\/attach\?stream=1&stdout=1&stderr=1&logs=0 HTTP\/1\.1\r\n/);
    output.destroy();
  } finally {
    engine.close();
  }
});

test('over a socket: a sink that asks for waits gets everything, in order, once it has room', async () => {
  const body = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = i % 251;
  const engine = await fakeEngine(async (socket) => {
    socket.write('HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
    for (let at = 0; at < body.length; at += 100_000) {
      if (!socket.write(body.subarray(at, at + 100_000))) await once(socket, 'drain');
    }
  });
  try {
    const kept: Buffer[] = [];
    let waits = 0;
    let takes = 0;
    const sink: OutputSink = {
      take: (data) => { kept.push(Buffer.from(data)); return ++takes % 3 !== 0; },
      room: () => { waits++; return new Promise((resolve) => setTimeout(resolve, 5)); },
    };
    const output = await attachOutput(engine.socketPath, 'abc123', { tty: true, sink });
    await once(output, 'end');
    assert.ok(waits > 0, 'the sink was waited for');
    assert.ok(Buffer.concat(kept).equals(body), 'every byte, in order');
    output.destroy();
  } finally {
    engine.close();
  }
});

test('over a socket: an error answer is an EngineError with the daemon\'s message', async () => {
  const engine = await fakeEngine(async (socket) => {
    socket.write('HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n\r\n{"message":"container abc123 is restarting"}\n');
  });
  try {
    await assert.rejects(attachOutput(engine.socketPath, 'abc123', { tty: true, sink: collector() }), (err: unknown) => {
      assert.ok(err instanceof EngineError, String(err));
      assert.equal(err.kind, 'conflict');
      assert.match(err.message, /is restarting/);
      return true;
    });
  } finally {
    engine.close();
  }
});

test('over a socket: an engine that never answers is abandoned when the signal aborts', async () => {
  const engine = await fakeEngine(() => new Promise(() => undefined));
  try {
    const ac = new AbortController();
    const attaching = attachOutput(engine.socketPath, 'abc123', { tty: true, sink: collector(), signal: ac.signal });
    await engine.request;
    ac.abort();
    await assert.rejects(attaching, /abandoned/);
  } finally {
    engine.close();
  }
});

test('over a socket: an engine that takes the attach and never answers is a hung engine after answerMs, naming the call', async () => {
  const engine = await fakeEngine(() => new Promise(() => undefined));
  try {
    const began = Date.now();
    const attaching = attachOutput(engine.socketPath, 'abc123', { tty: true, sink: collector(), answerMs: 300 });
    await engine.request;
    await assert.rejects(attaching, (err: unknown) => err instanceof EngineError && err.kind === 'unreachable'
      && err.message === `Docker engine at ${engine.socketPath} did not answer within 0.3 seconds when asked to attach to container abc123: it is hung`);
    assert.ok(Date.now() - began >= 290);
  } finally {
    engine.close();
  }
});

test('attaching to a container that does not exist is an EngineError (not-found) in plain words', async () => {
  const engine = testEngine();
  await assert.rejects(engine.attachOutput('no-such-container-for-attach', { tty: true, sink: collector() }), (err: unknown) => {
    assert.ok(err instanceof EngineError, String(err));
    assert.equal(err.kind, 'not-found');
    assert.match(err.message, /no-such-container-for-attach/);
    return true;
  });
});
