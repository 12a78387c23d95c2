import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentTypeFor, worthGzipping } from '../../lib/artifacts/content-type.ts';

test('content types come from the file name', () => {
  assert.equal(contentTypeFor('public/logs/live_backing.log'), 'text/plain');
  assert.equal(contentTypeFor('public/build/target.json'), 'application/json');
  assert.equal(contentTypeFor('public/build/target.tar.gz'), 'application/gzip');
  assert.equal(contentTypeFor('public/screenshot.PNG'), 'image/png');
  assert.equal(contentTypeFor('public/build/firefox'), 'application/octet-stream');
  assert.equal(contentTypeFor('public/x.unknownext'), 'application/octet-stream');
});

test('already-compressed files are not gzipped again', () => {
  for (const n of ['a.gz', 'a.tgz', 'a.zip', 'a.zst', 'a.xz', 'a.bz2', 'a.png', 'a.jpg', 'a.whl']) assert.equal(worthGzipping(n), false, n);
  for (const n of ['a.log', 'a.json', 'a.txt', 'a.html', 'noext', 'a.tar']) assert.equal(worthGzipping(n), true, n);
});
