// lib/memory/allocator-trim.ts: native/malloc-trim.node (built by `make deps`) hands freed heap
// pages back, and the idle worker asks for it (after a full garbage collection when it has one)
// at delays after its last task.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { IdleTrim, exposedGarbageCollector, loadAllocatorTrim, type AllocatorTrim, type TrimResult } from '../../lib/memory/allocator-trim.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the addon `make deps` builds loads and trims', () => {
  const allocator = loadAllocatorTrim();
  assert.ok(!('unavailable' in allocator), 'unavailable' in allocator ? allocator.unavailable : '');
  assert.equal(typeof allocator.trim(), 'boolean');
});

test('a missing addon is a sentence that says how to build it, not an exception', () => {
  const allocator = loadAllocatorTrim('/nonexistent/malloc-trim.node');
  assert.ok('unavailable' in allocator);
  assert.match(allocator.unavailable, /\/nonexistent\/malloc-trim\.node did not load .*make deps/);
});

test('a fragmented heap: freed pages stay resident until the trim hands them back', () => {
  // 40 MB of 1 KiB malloc'd buffers, one in sixteen kept: after a full collection most pages
  // hold no live chunk, yet glibc keeps them (they are not at the top of the heap).
  const child = `
    const { loadAllocatorTrim } = await import(${JSON.stringify(new URL('../../lib/memory/allocator-trim.ts', import.meta.url).pathname)});
    const allocator = loadAllocatorTrim();
    const keep = []; let garbage = [];
    for (let i = 0; i < 40000; i++) { const b = Buffer.allocUnsafeSlow(1024); b.fill(1); (i % 16 === 0 ? keep : garbage).push(b); }
    garbage = null;
    for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 200)); }
    const before = process.memoryUsage.rss();
    const released = allocator.trim();
    const after = process.memoryUsage.rss();
    console.log(JSON.stringify({ released, before, after, kept: keep.length }));`;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', child], { encoding: 'utf8', env: { ...process.env, MALLOC_ARENA_MAX: '1' } });
  const { released, before, after } = JSON.parse(out.trim().split('\n').at(-1)!) as { released: boolean; before: number; after: number };
  assert.equal(released, true);
  const mb = (before - after) / 1048576;
  assert.ok(mb > 20, `the trim handed back ${mb.toFixed(1)} MB of ~37 MB freed`);
});

test('idle trims at each delay; busy before them drops the trims', async () => {
  let calls = 0;
  const allocator: AllocatorTrim = { trim: () => { calls++; return true; } };
  const results: unknown[] = [];
  const until = async (done: () => boolean) => { for (let i = 0; i < 200 && !done(); i++) await sleep(10); assert.ok(done()); };
  const idleTrim = new IdleTrim(allocator, [50, 250], (r) => results.push(r));
  idleTrim.idle();
  idleTrim.busy();
  await sleep(400);
  assert.equal(calls, 0, 'a task started within the delays: no trim');
  idleTrim.idle();
  idleTrim.idle(); // one set of pending trims, not two
  await until(() => calls === 2);
  await sleep(300);
  assert.equal(calls, 2, 'one trim per delay');
  assert.equal(results.length, 2);
  const [result] = results as Array<{ released: boolean; rssBeforeMb: number; rssAfterMb: number; ms: number }>;
  assert.equal(result!.released, true);
  assert.ok(result!.rssBeforeMb > 0 && result!.rssAfterMb > 0 && result!.ms >= 0);
  idleTrim.idle(); // idle again once all have fired
  await until(() => calls === 3);
  idleTrim.busy(); // a task came between the two
  await sleep(400);
  assert.equal(calls, 3, 'the trim after busy() is dropped');
});

test('a full garbage collection comes before each trim, and the result says so; with it alone (no addon) idle still collects', async () => {
  const order: string[] = [];
  const results: TrimResult[] = [];
  const idleTrim = new IdleTrim({ trim: () => { order.push('trim'); return true; } }, [10], (r) => results.push(r), () => order.push('collect'));
  idleTrim.idle();
  for (let i = 0; i < 100 && results.length === 0; i++) await sleep(10);
  assert.deepEqual(order, ['collect', 'trim']);
  assert.equal(results[0]!.collected, true);
  assert.equal(results[0]!.released, true);
  const collectOnly: TrimResult[] = [];
  const alone = new IdleTrim(undefined, [10], (r) => collectOnly.push(r), () => order.push('collect'));
  alone.idle();
  for (let i = 0; i < 100 && collectOnly.length === 0; i++) await sleep(10);
  assert.equal(collectOnly[0]!.collected, true);
  assert.equal(collectOnly[0]!.released, false);
});

test('exposedGarbageCollector: none in a process without --expose-gc; in one with it, a collection frees what is dead', () => {
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') assert.equal(exposedGarbageCollector(), undefined);
  const script = `
    import { exposedGarbageCollector } from ${JSON.stringify(new URL('../../lib/memory/allocator-trim.ts', import.meta.url).href)};
    const collect = exposedGarbageCollector();
    if (!collect) { console.log('none'); process.exit(0); }
    let garbage = Array.from({ length: 64 }, () => new ArrayBuffer(1 << 20));
    const before = process.memoryUsage().arrayBuffers;
    garbage = undefined;
    collect();
    console.log(String(before - process.memoryUsage().arrayBuffers));
  `;
  const freed = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' }).trim();
  assert.ok(Number(freed) >= 60 * 1048576, `a collection freed ${freed} bytes of the 64 MiB of dead buffers`);
});

test('with neither the addon nor a collector idle does nothing', async () => {
  const idleTrim = new IdleTrim(undefined, [10], () => assert.fail('nothing to do'));
  idleTrim.idle();
  await sleep(40);
});
