// dockerSave's pure parts: the artifacts it reserves, their expiry, the committed image's name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { cacheArtifactName, committedImageName, countBytes, dockerSave, savedArtifactExpiry } from '../../lib/features/docker-save.ts';
import type { FeaturePlanInput } from '../../lib/features/feature.ts';

test('saved artifacts expire after 7 days, or with the task when it expires sooner', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  assert.equal(savedArtifactExpiry(now, '2031-01-01T00:00:00Z').toISOString(), '2030-01-08T00:00:00.000Z');
  assert.equal(savedArtifactExpiry(now, '2030-01-03T00:00:00Z').toISOString(), '2030-01-03T00:00:00.000Z');
});

test('the committed image is named as docker-worker named it: lower case, no _ or -', () => {
  assert.equal(committedImageName('aB_c-DEF', 2), 'ab0c0def-2');
});

test('the plan reserves the image artifact and one artifact per cache', () => {
  const planned = dockerSave.plan({ payload: { image: 'x', maxRunTime: 1, cache: { 'a-cache': '/c', other: '/o/' } } } as unknown as FeaturePlanInput);
  assert.deepEqual(planned.reservedArtifacts, ['public/dockerImage.tar', 'public/cache/a-cache.tar', 'public/cache/other.tar']);
  assert.equal(cacheArtifactName('x'), 'public/cache/x.tar');
});

test('countBytes reads a stream to its end', async () => {
  assert.equal(await countBytes(Readable.from([Buffer.alloc(3), Buffer.alloc(70_000)])), 70_003);
});
