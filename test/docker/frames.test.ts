// lib/docker/frames.ts: the engine's multiplexed frames split into their payloads, however the
// reads cut them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameSplitter } from '../../lib/docker/frames.ts';

function frame(stream: 1 | 2, payload: string): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(Buffer.byteLength(payload), 4);
  return Buffer.concat([header, Buffer.from(payload)]);
}

const frames = Buffer.concat([frame(1, 'first '), frame(2, 'err '), frame(1, ''), frame(1, 'x'.repeat(70_000)), frame(2, ' last')]);
const expected = `first err ${'x'.repeat(70_000)} last`;

function split(reads: Buffer[]): { text: string; pieces: number } {
  const splitter = new FrameSplitter();
  const out: Buffer[] = [];
  for (const read of reads) splitter.push(read, (p) => { out.push(Buffer.from(p)); return true; });
  return { text: Buffer.concat(out).toString(), pieces: out.length };
}

test('every cut of the reads, headers split between two reads included, gives the payloads in order, each once', () => {
  assert.equal(split([frames]).text, expected);
  for (const size of [1, 3, 7, 8, 9, 13, 4096, 65_536]) {
    const reads: Buffer[] = [];
    for (let at = 0; at < frames.length; at += size) reads.push(frames.subarray(at, at + size));
    assert.equal(split(reads).text, expected, `reads of ${size} bytes`);
  }
});

test('the payload handed on is the read itself, not a copy; a take that asks to wait is reported, and still got all', () => {
  const read = frame(1, 'hello');
  let seen: Buffer | undefined;
  const more = new FrameSplitter().push(read, (p) => { seen = p; return false; });
  assert.equal(more, false);
  assert.equal(seen!.toString(), 'hello');
  assert.equal(seen!.buffer, read.buffer, 'a view of the read');
});

test('many small frames in one read (a whole log read at once) are split in one pass', () => {
  const many = Buffer.concat(Array.from({ length: 200_000 }, (_, i) => frame(1, `${i % 10}`)));
  const { text, pieces } = split([many]);
  assert.equal(pieces, 200_000);
  assert.equal(text, Array.from({ length: 200_000 }, (_, i) => `${i % 10}`).join(''));
});
