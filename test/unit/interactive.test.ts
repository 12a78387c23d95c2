// The interactive shell's pure parts: the wire protocol, Docker's multiplexed output, where the
// socket is, and when the hold ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DockerStreamDemuxer, MSG, execRequestFrom, frame, resizeFrame } from '../../lib/interactive/exec-protocol.ts';
import { sessionUrl, socketUrlFromPageUrl } from '../../lib/interactive/shell-location.ts';
import { latestRelease, releaseAt, type HoldPolicy } from '../../lib/interactive/hold-policy.ts';

test('frames: one code byte, then the payload; resize is rows and columns, UInt16LE', () => {
  assert.deepEqual([...frame(MSG.stopped, Buffer.from([7]))], [200, 7]);
  assert.deepEqual([...frame(MSG.resume)], [100]);
  assert.deepEqual([...resizeFrame(40, 300)], [50, 40, 0, 44, 1]);
});

test('the command and tty come from the query, as docker-exec-websocket-server clients send them', () => {
  assert.deepEqual(execRequestFrom(new URL('ws://x/s?tty=true&command=sh&command=-c&command=echo%20hi')), { command: ['sh', '-c', 'echo hi'], tty: true });
  assert.deepEqual(execRequestFrom(new URL('ws://x/s')), { command: ['sh'], tty: false });
});

test('Docker\'s multiplexed output is split into stdout and stderr, whatever the chunking', () => {
  const header = (stream: number, size: number) => { const b = Buffer.alloc(8); b[0] = stream; b.writeUInt32BE(size, 4); return b; };
  const whole = Buffer.concat([header(1, 3), Buffer.from('out'), header(2, 4), Buffer.from('err!'), header(1, 0)]);
  for (const step of [1, 3, 7, whole.length]) {
    const got: Array<[number, string]> = [];
    const demux = new DockerStreamDemuxer((code, payload) => got.push([code, payload.toString()]));
    for (let at = 0; at < whole.length; at += step) demux.push(whole.subarray(at, at + step));
    assert.deepEqual(got, [[MSG.stdout, 'out'], [MSG.stderr, 'err!'], [MSG.stdout, '']]);
  }
});

test('the socket sits beside the page, ws for http and wss for https', () => {
  assert.equal(socketUrlFromPageUrl('http://127.0.0.1:4000/SECRET/shell.html'), 'ws://127.0.0.1:4000/SECRET/socket');
  assert.equal(socketUrlFromPageUrl('https://w.example.com:4000/S/shell.html'), 'wss://w.example.com:4000/S/socket');
  assert.throws(() => socketUrlFromPageUrl('https://example.com/other'));
  assert.equal(sessionUrl('ws://h/S/socket', ['cat', '-n'], true), 'ws://h/S/socket?tty=true&command=cat&command=-n');
});

test('the hold: minTime from the start, while sessions are open, the expiry after the last; never past maxRunTime', () => {
  const policy: HoldPolicy = { startedAt: 1_000_000, minTimeMs: 180_000, expiryMs: 900_000, maxRunTimeMs: 3_600_000 };
  assert.equal(releaseAt(policy, { open: 0 }), 1_180_000);
  assert.equal(releaseAt(policy, { open: 0, lastEndedAt: 1_010_000 }), 1_910_000);
  assert.equal(releaseAt(policy, { open: 2, lastEndedAt: 1_010_000 }), latestRelease(policy));
  assert.equal(latestRelease(policy), 1_000_000 + 3_600_000 - 10_000);
  const short: HoldPolicy = { ...policy, maxRunTimeMs: 60_000 };
  assert.equal(releaseAt(short, { open: 0 }), 1_000_000 + 60_000 - 6_000);
});
