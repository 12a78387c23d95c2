import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseByteRange } from '../../lib/log/byte-range.ts';

test('open-ended, bounded and suffix ranges', () => {
  assert.deepEqual(parseByteRange('bytes=10-', 100), { start: 10, end: undefined });
  assert.deepEqual(parseByteRange('bytes=10-19', 100), { start: 10, end: 19 });
  assert.deepEqual(parseByteRange('bytes=-30', 100), { start: 70, end: undefined });
  assert.deepEqual(parseByteRange('bytes=-300', 100), { start: 0, end: undefined });
});

test('anything else means the whole log', () => {
  for (const h of [undefined, '', 'bytes=-', 'bytes=5-2', 'lines=1-', 'bytes=1-2,4-5', 'bytes=abc-']) {
    assert.equal(parseByteRange(h, 100), undefined, String(h));
  }
});
