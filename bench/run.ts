// `make bench`: measures the worker side by side with the raw Docker engine in one run and
// writes bench/results/latest.md and latest.json. Benchmarks report figures; they never fail
// on timing (the exit code is non-zero only when the harness itself could not run).
// Knobs: see lib/options.ts (BENCH_QUICK=1 for a quick run, BENCH_ONLY=overhead,... ).
import os from 'node:os';
import { benchOptions, BENCHMARKS, type BenchmarkName } from './lib/options.ts';
import path from 'node:path';
import { makeContext, type BenchContext } from './lib/context.ts';
import { ContainerEvents } from './lib/docker-events.ts';
import { docker, removeRawLeftovers } from './lib/raw-engine.ts';
import { describeMachine, markdownTable, updateReadme, writeResults, type BenchmarkResult } from './lib/report.ts';
import { REPO_ROOT } from './lib/worker-process.ts';
import { footprint } from './footprint.ts';
import { overhead } from './overhead.ts';
import { throughput } from './throughput.ts';
import { logPath } from './log-path.ts';
import { artifactUpload } from './artifact-upload.ts';
import { artifactImage } from './artifact-image.ts';
import { dockerSaveBench } from './docker-save.ts';
import { cryptoCosts } from './crypto.ts';
import { proxies } from './proxies.ts';
import { soak } from './soak.ts';
import { registryPull } from './registry-pull.ts';
import { embeddedLoad } from './embedded-load.ts';
import { soakFaults } from './soak-faults.ts';

const benchmarks: Record<BenchmarkName, { title: string; run: (ctx: BenchContext) => Promise<BenchmarkResult> }> = {
  footprint: { title: 'Footprint', run: footprint },
  overhead: { title: 'Per-task overhead', run: overhead },
  throughput: { title: 'Throughput', run: throughput },
  log: { title: 'Log path', run: logPath },
  artifact: { title: 'Artifact upload', run: artifactUpload },
  image: { title: 'Artifact image', run: artifactImage },
  save: { title: 'dockerSave', run: dockerSaveBench },
  crypto: { title: 'Crypto costs', run: cryptoCosts },
  soak: { title: 'Soak', run: soak },
  'soak-faults': { title: 'Soak with faults', run: soakFaults },
  proxies: { title: 'Task proxies', run: proxies },
  pull: { title: 'Registry pull', run: registryPull },
  'embedded-load': { title: 'Embedded deployment under load', run: embeddedLoad },
};

async function main(): Promise<number> {
  const options = benchOptions();
  const engine = docker();
  try {
    await engine.ping();
  } catch (err) {
    process.stderr.write(`bench: no Docker engine answers (${(err as Error).message}); run 'make docker' first\n`);
    return 1;
  }
  try {
    await engine.getImage(options.image).inspect();
  } catch {
    process.stderr.write(`bench: the image ${options.image} is missing; run 'make images' first\n`);
    return 1;
  }
  await removeRawLeftovers(engine);
  const machine = await describeMachine(engine);
  const events = await ContainerEvents.open(engine);
  const ctx = makeContext(options, engine, events);
  ctx.progress(`${options.quick ? 'quick' : 'full'} run of ${options.only.join(', ')} on ${machine.nproc} CPUs, load ${machine.loadAverageAtStart.join(' ')}`);
  const results: BenchmarkResult[] = [];
  for (const name of options.only) {
    const b = benchmarks[name];
    ctx.progress(`${b.title}: starting`);
    const t0 = performance.now();
    let result: BenchmarkResult;
    try {
      result = await b.run(ctx);
    } catch (err) {
      result = { name, title: b.title, rows: [], details: {}, error: (err as Error).stack ?? String(err) };
      ctx.progress(`${b.title}: failed: ${(err as Error).message}`);
    }
    result.seconds = Math.round((performance.now() - t0) / 100) / 10;
    results.push(result);
    await removeRawLeftovers(engine);
    machine.loadAverageAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
    writeResults(options.resultsDir, machine, options, results);
  }
  events.close();
  const files = writeResults(options.resultsDir, machine, options, results);
  process.stdout.write(`\n${markdownTable(results)}\n\n${files.md}\n${files.json}\n`);
  // Only a full run of every benchmark, into the default results directory, is the README's table.
  const complete = !options.quick && BENCHMARKS.every((b) => options.only.includes(b)) && results.every((r) => !r.error);
  if (complete && !process.env.BENCH_RESULTS) {
    const readme = path.join(REPO_ROOT, 'README.md');
    if (updateReadme(readme, machine, results)) process.stdout.write(`${readme}: benchmark table updated\n`);
  }
  return 0;
}

process.exitCode = await main();
