import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reachableHost } from '../../lib/host/reachable-host.ts';

const unknown = { publicIp: '127.0.0.1', publicHostname: '' };

test('a server bound to one address is reached there', () => {
  assert.equal(reachableHost('10.0.0.5', { publicIp: '203.0.113.7', publicHostname: 'ec2.example' }), '10.0.0.5');
  assert.equal(reachableHost('127.0.0.1', unknown), '127.0.0.1');
  assert.equal(reachableHost('fd00::5', unknown), '[fd00::5]');
});

test('a server bound to every address is reached at the public address the host knows', () => {
  assert.equal(reachableHost('0.0.0.0', { publicIp: '203.0.113.7', publicHostname: 'ec2-203-0-113-7.compute.example' }), '203.0.113.7');
  assert.equal(reachableHost('::', { publicIp: '2001:db8::7', publicHostname: '' }), '[2001:db8::7]');
  // No public address (a private subnet): the public host name, if any.
  assert.equal(reachableHost('0.0.0.0', { publicIp: '127.0.0.1', publicHostname: 'worker-1.example' }), 'worker-1.example');
});

test('with no public address known, only this machine can reach it: loopback', () => {
  assert.equal(reachableHost('0.0.0.0', unknown), '127.0.0.1');
  assert.equal(reachableHost('::', { publicIp: '', publicHostname: ' ' }), '127.0.0.1');
});
