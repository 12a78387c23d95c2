import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mayUseCredentials, registryCredentialsFor } from '../../lib/docker/registry-credentials.ts';

const config = {
  'registry.example.com': { username: 'host', password: 'p1' },
  'registry.example.com/team': { username: 'team', password: 'p2' },
  'registry.example.com/team/special': { username: 'special', password: 'p3' },
  'index.docker.io': { username: 'hub', password: 'p4' },
  '127.0.0.1:5481': { username: 'local', password: 'p5' },
};

test('the longest matching host/prefix wins', () => {
  assert.equal(registryCredentialsFor('registry.example.com/other:1', config)?.username, 'host');
  assert.equal(registryCredentialsFor('registry.example.com/team/app:1', config)?.username, 'team');
  assert.equal(registryCredentialsFor('registry.example.com/team/special/x@sha256:' + 'b'.repeat(64), config)?.username, 'special');
});

test('a prefix matches whole path components only', () => {
  assert.equal(registryCredentialsFor('registry.example.com/teamwork/app', config)?.username, 'host');
});

test('other registries get nothing; ports are part of the host', () => {
  assert.equal(registryCredentialsFor('other.example.com/team/app', config), undefined);
  assert.equal(registryCredentialsFor('127.0.0.1:5480/taskenv_pass', config), undefined);
  const local = registryCredentialsFor('127.0.0.1:5481/taskenv_pass:latest', config);
  assert.deepEqual(local, { username: 'local', password: 'p5', registry: '127.0.0.1:5481' });
});

test('Docker Hub names match Docker Hub keys, whatever alias the config uses', () => {
  assert.equal(registryCredentialsFor('ubuntu', config)?.username, 'hub');
  assert.equal(registryCredentialsFor('someone/app:2', config)?.username, 'hub');
  assert.equal(registryCredentialsFor('ubuntu', { 'docker.io/ubuntu': { username: 'u', password: 'p' } })?.username, 'u');
});

test('credentials need the scope docker-worker:image:<name>', () => {
  const image = '127.0.0.1:5481/taskenv_pass:latest';
  assert.equal(mayUseCredentials([], image), false);
  assert.equal(mayUseCredentials(['docker-worker:image:127.0.0.1:5481/taskenv_pass:latest'], image), true);
  assert.equal(mayUseCredentials(['docker-worker:image:127.0.0.1:5481/taskenv_pass:other'], image), false);
  assert.equal(mayUseCredentials(['docker-worker:image:127.0.0.1:5481/*'], image), true);
  assert.equal(mayUseCredentials(['docker-worker:image:127.0.0.1:5480/*'], image), false);
  assert.equal(mayUseCredentials(['docker-worker:*'], image), true);
  assert.equal(mayUseCredentials(['docker-worker:image:127.0.0.1:5481/taskenv_pass'], image), false);
});
