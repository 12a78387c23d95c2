// The engine adapter against the real Docker daemon and the locally built test images.
import { once } from 'node:events';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { Engine, type ContainerCreateOptions } from '../../lib/docker/engine.ts';
import { EngineError, unreachableEngine } from '../../lib/docker/engine-error.ts';
import { ImageFailure } from '../../lib/images/errors.ts';
import { LABEL_OWNER, LABEL_RUN_ID, LABEL_TASK_ID, LABEL_WORKER_ID } from '../../lib/docker/labels.ts';
import { dockerCli, dockerSaveStream, readAll, removeOwnedBy, TASKENV_FAIL, TASKENV_PASS, testEngine, testWorkerId } from '../support/docker.ts';

const engine = testEngine();
const workerId = testWorkerId('engine');
after(() => removeOwnedBy(engine, workerId));

async function run(options: ContainerCreateOptions, taskId = 'task-a'): Promise<{ id: string; output: string; exitCode: number; oomKilled: boolean }> {
  const id = await engine.createContainer(options, { workerId, taskId, runId: 0 });
  await engine.startContainer(id);
  const text = readAll(await engine.logs(id, { tty: options.Tty ?? false, follow: true }));
  const status = await engine.waitContainer(id);
  return { id, output: await text, ...status };
}

async function tarEntries(stream: Readable): Promise<Map<string, { type: string; content: string }>> {
  const entries = new Map<string, { type: string; content: string }>();
  const extract = tar.extract();
  extract.on('entry', (header, body, next) => {
    const chunks: Buffer[] = [];
    body.on('data', (c: unknown) => { chunks.push(c as Buffer); });
    body.on('end', () => {
      entries.set(header.name, { type: header.type ?? 'file', content: Buffer.concat(chunks).toString('utf8') });
      next();
    });
  });
  const done = new Promise<void>((resolve, reject) => { extract.on('finish', resolve); extract.on('error', reject); });
  stream.pipe(extract);
  await done;
  return entries;
}

test('the engine answers and reports its version', async () => {
  await engine.ping();
  const v = await engine.version();
  assert.match(v.version, /^\d+\.\d+/);
});

test('taskenv_pass runs `taskhost-who a b` and prints "a b"; taskenv_fail exits non-zero', async () => {
  const pass = await run({ Image: TASKENV_PASS, Cmd: ['taskhost-who', 'a', 'b'] });
  assert.equal(pass.output, 'a b\n');
  assert.equal(pass.exitCode, 0);
  const fail = await run({ Image: TASKENV_FAIL, Cmd: ['taskhost-who', 'a', 'b'] });
  assert.equal(fail.output, 'a b\n');
  assert.notEqual(fail.exitCode, 0);
});

test('a container carries the owner labels, its exit code, and is gone after remove', async () => {
  const { id, exitCode, output } = await run({ Image: TASKENV_PASS, Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'], Labels: { 'my.label': 'x' } }, 'task-labels');
  assert.equal(exitCode, 3);
  assert.match(output, /out\n/);
  assert.match(output, /err\n/);
  const info = await engine.inspectContainer(id);
  assert.equal(info.Config.Labels[LABEL_OWNER], 'true');
  assert.equal(info.Config.Labels[LABEL_WORKER_ID], workerId);
  assert.equal(info.Config.Labels[LABEL_TASK_ID], 'task-labels');
  assert.equal(info.Config.Labels[LABEL_RUN_ID], '0');
  assert.equal(info.Config.Labels['my.label'], 'x');
  await engine.removeContainer(id);
  await assert.rejects(engine.inspectContainer(id), (err: unknown) => err instanceof EngineError && err.kind === 'not-found');
  await engine.removeContainer(id); // removing twice is fine
});

test('a removal another request has under way: removeContainer returns once the container is gone, not at the engine\'s "already in progress"', async () => {
  const other = testEngine();
  for (let i = 0; i < 5; i++) {
    const id = await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['sleep', '600'] }, { workerId, taskId: 'task-removal-race' });
    await engine.startContainer(id);
    // Another client (an earlier request this worker stopped waiting for, or an earlier
    // process) asks first; the engine answers the second DELETE 409 while it removes.
    const first = other.removeContainer(id);
    await new Promise((resolve) => setTimeout(resolve, 2));
    await engine.removeContainer(id);
    await assert.rejects(engine.inspectContainer(id), (err: unknown) => err instanceof EngineError && err.kind === 'not-found', `round ${i}: still there after removeContainer returned`);
    await first;
  }
});

test('with a TTY the output stream is raw terminal output', async () => {
  const { output, exitCode } = await run({ Image: TASKENV_PASS, Cmd: ['sh', '-c', 'echo hi; [ -t 1 ] && echo tty'], Tty: true });
  assert.equal(exitCode, 0);
  assert.equal(output, 'hi\r\ntty\r\n');
});

test('logs replay what a finished container printed', async () => {
  const { id } = await run({ Image: TASKENV_PASS, Cmd: ['sh', '-c', 'echo one; echo two >&2'] });
  const text = await readAll(await engine.logs(id, { tty: false }));
  assert.equal(text.split('\n').filter(Boolean).sort().join(','), 'one,two');
});

test('followed logs arrive while the container still runs', async () => {
  const id = await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['sh', '-c', 'echo first; sleep 600'] }, { workerId });
  await engine.startContainer(id);
  const stream = await engine.logs(id, { tty: false, follow: true });
  const [first] = await once(stream, 'data') as [Buffer];
  assert.equal(first.toString(), 'first\n');
  assert.equal((await engine.inspectContainer(id)).State.Running, true);
  await engine.killContainer(id);
  await readAll(stream); // ends once the container stops
  await engine.removeContainer(id);
});

test('a container over its memory limit is reported as OOM killed', async () => {
  const result = await run({ Image: TASKENV_PASS, Cmd: ['sh', '-c', 'tail /dev/zero'], HostConfig: { Memory: 16 * 1024 * 1024, MemorySwap: 16 * 1024 * 1024 } });
  assert.equal(result.oomKilled, true);
  assert.notEqual(result.exitCode, 0);
  const normal = await run({ Image: TASKENV_PASS, Cmd: ['true'] });
  assert.equal(normal.oomKilled, false);
});

test('kill stops a running container; killing a stopped one is fine', async () => {
  const id = await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['sleep', '600'] }, { workerId });
  await engine.startContainer(id);
  await engine.killContainer(id);
  const status = await engine.waitContainer(id);
  assert.equal(status.exitCode, 137);
  await engine.killContainer(id);
});

test('getArchive streams a file and a directory as tar', async () => {
  const { id } = await run({ Image: TASKENV_PASS, Cmd: ['sh', '-c', 'mkdir -p /out/sub && echo hello > /out/a.txt && echo deep > /out/sub/b.txt'] });
  const file = await tarEntries(await engine.getArchive(id, '/out/a.txt'));
  assert.deepEqual([...file.keys()], ['a.txt']);
  assert.equal(file.get('a.txt')?.content, 'hello\n');
  const dir = await tarEntries(await engine.getArchive(id, '/out'));
  assert.equal(dir.get('out/a.txt')?.content, 'hello\n');
  assert.equal(dir.get('out/sub/b.txt')?.content, 'deep\n');
  assert.equal(dir.get('out/sub/')?.type ?? dir.get('out/sub')?.type, 'directory');
  await assert.rejects(engine.getArchive(id, '/nope'), (err: unknown) => {
    assert.ok(err instanceof EngineError);
    assert.equal(err.kind, 'not-found');
    assert.match(err.message, /\/nope does not exist in the container/);
    return true;
  });
});

test('listOwned lists only labelled objects, never a foreign container', async () => {
  const workerId = testWorkerId('owned');
  const foreignName = `foreign-${workerId}`;
  dockerCli(['create', '--name', foreignName, '--label', `${LABEL_WORKER_ID}=${workerId}`, TASKENV_PASS, 'true']);
  try {
    const ours = await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['true'] }, { workerId });
    const networkId = await engine.createNetwork(`net-${workerId}`, { workerId, taskId: 'task-net' });
    await engine.createVolume(`vol-${workerId}`, { workerId });

    const containers = await engine.listOwnedContainers(workerId);
    assert.deepEqual(containers.map((c) => c.id), [ours]);
    assert.ok(!(await engine.listOwnedContainers()).some((c) => c.name === foreignName));
    const networks = await engine.listOwnedNetworks(workerId);
    assert.deepEqual(networks.map((n) => n.id), [networkId]);
    assert.equal(networks[0]!.labels[LABEL_TASK_ID], 'task-net');
    assert.deepEqual((await engine.listOwnedVolumes(workerId)).map((v) => v.name), [`vol-${workerId}`]);
    assert.deepEqual(await engine.listOwnedContainers(testWorkerId('nobody')), []);

    await removeOwnedBy(engine, workerId);
    assert.deepEqual(await engine.listOwnedContainers(workerId), []);
    assert.deepEqual(await engine.listOwnedNetworks(workerId), []);
    assert.deepEqual(await engine.listOwnedVolumes(workerId), []);
    assert.equal(dockerCli(['inspect', '-f', '{{.Name}}', foreignName]), `/${foreignName}`);
  } finally {
    dockerCli(['rm', '-f', foreignName]);
  }
});

test('images: inspect, exists, tag, list, remove', async () => {
  const info = await engine.inspectImage(TASKENV_PASS);
  assert.ok(info?.Id.startsWith('sha256:'));
  assert.equal(await engine.imageExists('no-such-image-anywhere:latest'), false);
  const tag = `tagged-${workerId}`;
  await engine.tagImage(TASKENV_PASS, 'docker-worker-test', tag);
  assert.ok((await engine.listImages()).some((i) => i.id === info!.Id && i.repoTags.includes(`docker-worker-test:${tag}`)));
  await engine.removeImage(`docker-worker-test:${tag}`);
  assert.equal(await engine.imageExists(`docker-worker-test:${tag}`), false);
  assert.equal(await engine.imageExists(TASKENV_PASS), true, 'removing a tag keeps the image');
  await engine.removeImage(`docker-worker-test:${tag}`); // missing is fine
});

test('loadImage reads a docker save stream and reports the loaded names', async () => {
  const tag = `docker-worker-test:load-${workerId}`;
  dockerCli(['tag', TASKENV_PASS, tag]);
  try {
    const loaded = await engine.loadImage(dockerSaveStream(tag));
    assert.deepEqual(loaded.names, [tag]);
  } finally {
    await engine.removeImage(tag);
  }
  await assert.rejects(engine.loadImage(dockerSaveStream('no-such-image-anywhere:latest')), (err: unknown) => err instanceof EngineError);
});

test('exec runs a command in a running container', async () => {
  const id = await engine.createContainer({ Image: TASKENV_PASS, Cmd: ['sleep', '600'] }, { workerId });
  await engine.startContainer(id);
  try {
    const session = await engine.exec(id, { cmd: ['sh', '-c', 'echo inside; exit 4'], tty: true });
    assert.equal(await readAll(session.stream), 'inside\r\n');
    assert.equal(await session.exitCode(), 4);
  } finally {
    await engine.removeContainer(id);
  }
});

test('clear errors: unknown image, unreachable daemon', async () => {
  await assert.rejects(engine.createContainer({ Image: 'no-such-image-anywhere:latest' }, { workerId }), (err: unknown) => {
    assert.ok(err instanceof EngineError);
    assert.equal(err.kind, 'not-found');
    assert.match(err.message, /no-such-image-anywhere/);
    return true;
  });
  const nowhere = new Engine({ socketPath: '/tmp/no-docker-here.sock' });
  await assert.rejects(nowhere.ping(), (err: unknown) => {
    assert.ok(err instanceof EngineError);
    assert.equal(err.kind, 'unreachable');
    assert.equal(err.message, 'Docker engine not reachable at /tmp/no-docker-here.sock: is dockerd running? (make docker)');
    return true;
  });
});

test('an unreachable engine is found under the errors that wrap it (an image failure), and only that kind', async () => {
  const away = await new Engine({ socketPath: '/tmp/no-docker-here.sock' }).inspectImage('x:latest').then(() => undefined, (err: unknown) => err);
  assert.ok(away instanceof EngineError && away.kind === 'unreachable');
  assert.equal(unreachableEngine(away), away);
  assert.equal(unreachableEngine(new ImageFailure('engine', 'Docker could not load the image', new Error('load', { cause: away }))), away);
  assert.equal(unreachableEngine(new ImageFailure('engine', 'refused', new EngineError('server', 'refused'))), undefined);
  assert.equal(unreachableEngine(new Error('other')), undefined);
  assert.equal(unreachableEngine(undefined), undefined);
});

test("an image's VOLUME gets an anonymous volume labelled as the worker's, removed with the container", async () => {
  const image = `docker-worker-test-volume:${workerId}`;
  dockerCli(['build', '-q', '-t', image, '-'], { input: `FROM ${TASKENV_PASS}\nRUN mkdir -p /data /spare && echo seeded > /data/f\nVOLUME /data\nVOLUME /spare\n` });
  try {
    const id = await engine.createContainer({ Image: image, Cmd: ['cat', '/data/f'], HostConfig: { Binds: [] }, Volumes: { '/extra': {} } }, { workerId, taskId: 'task-volume', runId: 2 });
    await engine.startContainer(id);
    const text = readAll(await engine.logs(id, { tty: false, follow: true }));
    assert.equal((await engine.waitContainer(id)).exitCode, 0);
    assert.equal(await text, 'seeded\n', "the volume starts with the image's content, as an anonymous one does");
    const mounts = (await engine.inspectContainer(id)).Mounts.filter((m) => m.Type === 'volume');
    assert.deepEqual(mounts.map((m) => m.Destination).sort(), ['/data', '/extra', '/spare']);
    const owned = await engine.listOwnedVolumes(workerId);
    for (const m of mounts) {
      const volume = owned.find((v) => v.name === m.Name);
      assert.ok(volume, `volume for ${m.Destination} is labelled as ours`);
      assert.equal(volume.labels[LABEL_TASK_ID], 'task-volume');
      assert.equal(volume.labels[LABEL_RUN_ID], '2');
    }
    await engine.removeContainer(id);
    const left = new Set((await engine.listOwnedVolumes(workerId)).map((v) => v.name));
    assert.deepEqual(mounts.filter((m) => left.has(m.Name!)), [], 'removed with the container');

    // A bind over a VOLUME path replaces it: no volume for that path.
    const bound = await engine.createContainer({ Image: image, Cmd: ['true'], HostConfig: { Binds: ['/tmp:/data/'] } }, { workerId });
    const boundMounts = (await engine.inspectContainer(bound)).Mounts;
    assert.deepEqual(boundMounts.filter((m) => m.Type === 'volume').map((m) => m.Destination), ['/spare']);
    assert.equal(boundMounts.find((m) => m.Destination === '/data')?.Type, 'bind');
    await engine.removeContainer(bound);
  } finally {
    dockerCli(['rmi', '-f', image]);
  }
});

test('a labelled anonymous volume a removal left behind is found as the worker\'s', async () => {
  const image = `docker-worker-test-volume2:${workerId}`;
  dockerCli(['build', '-q', '-t', image, '-'], { input: `FROM ${TASKENV_PASS}\nVOLUME /data\n` });
  try {
    const id = await engine.createContainer({ Image: image, Cmd: ['true'] }, { workerId, taskId: 'task-left' });
    const [mount] = (await engine.inspectContainer(id)).Mounts.filter((m) => m.Type === 'volume');
    dockerCli(['rm', id]); // removed without its volumes, as a failed cleanup might leave it
    const volume = (await engine.listOwnedVolumes(workerId)).find((v) => v.name === mount!.Name);
    assert.ok(volume, 'the dangling volume carries the owner labels');
    assert.equal(volume.labels[LABEL_TASK_ID], 'task-left');
    await engine.removeVolume(volume.name);
  } finally {
    dockerCli(['rmi', '-f', image]);
  }
});
