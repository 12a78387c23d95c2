// The raw attach: frames (no TTY) split wherever the socket reads happen to end, a sink that
// asks for a wait, and the engine refusing (no such container).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttachedOutput, type OutputSink } from '../../lib/docker/attach-socket.ts';
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

test('attaching to a container that does not exist is an EngineError (not-found) in plain words', async () => {
  const engine = testEngine();
  await assert.rejects(engine.attachOutput('no-such-container-for-attach', { tty: true, sink: collector() }), (err: unknown) => {
    assert.ok(err instanceof EngineError, String(err));
    assert.equal(err.kind, 'not-found');
    assert.match(err.message, /no-such-container-for-attach/);
    return true;
  });
});
