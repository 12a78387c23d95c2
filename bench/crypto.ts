// Crypto costs a task pays with encryptedEnv, chainOfTrust and secret masking, in-process (no
// Docker, no queue): the functions the task run calls, timed one call at a time (median).
//   decrypt 10 encryptedEnv variables   before the container is created (OpenPGP, curve25519)
//   chain of trust, 100 artifacts       certificate JSON + ed25519 signature; + the OpenPGP form
//   masking                             task-log bytes through the masker with 10 secrets (each
//                                       also in its base64 forms) against none
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import type { BenchContext } from './lib/context.ts';
import type { BenchmarkResult, Row } from './lib/report.ts';
import { MIB, mbPerSecond, median, round } from './lib/stats.ts';
import { loadWorkerKeys, workerKeyPaths } from '../lib/crypto/worker-keys.ts';
import { decryptEncryptedEnv, encryptEnvVariable } from '../lib/crypto/encrypted-env.ts';
import { chainOfTrustArtifacts, sha256Hex } from '../lib/crypto/chain-of-trust.ts';
import { SecretMasker } from '../lib/log/secret-masker.ts';
import { RESERVED_ENV_NAMES } from '../lib/task/reserved-env.ts';

async function timeEach(iterations: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  await fn(); // warm-up: JIT, openpgp's lazy initialisation
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

function maskMbps(secrets: string[], bytes: number): number {
  const line = Buffer.from(`${'build step output 0123456789 abcdefghijklmnopqrstuvwxyz '.repeat(2)}\n`);
  const chunk = Buffer.alloc(16 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = line[i % line.length]!;
  const masker = new SecretMasker(secrets);
  const t0 = performance.now();
  let out = 0;
  for (let done = 0; done < bytes; done += chunk.length) for (const piece of masker.push(chunk)) out += piece.length;
  for (const piece of masker.flush()) out += piece.length;
  if (out !== Math.ceil(bytes / chunk.length) * chunk.length) throw new Error('the masker lost bytes');
  return mbPerSecond(bytes, performance.now() - t0);
}

export async function cryptoCosts(ctx: BenchContext): Promise<BenchmarkResult> {
  const iterations = ctx.options.quick ? 5 : 50;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-crypto-'));
  try {
    const keys = await loadWorkerKeys(workerKeyPaths({ stateDir: dir, keys: { openpgpPrivateKeyPath: '', ed25519PrivateKeyPath: '' } }), { createDefaults: true });
    const taskId = 'benchTaskIdAAAAAAAAAAA';
    const now = Date.now();
    const entries = await Promise.all(Array.from({ length: 10 }, (_, i) => encryptEnvVariable(keys.openpgp.toPublic(), {
      taskId, startTime: now - 60_000, endTime: now + 3600_000, name: `SECRET_${i}`, value: randomBytes(32).toString('base64'),
    })));
    ctx.progress('crypto: decrypting 10 encryptedEnv variables');
    const decryptMs = await timeEach(iterations, async () => {
      const env = await decryptEncryptedEnv(entries, keys.openpgp, { taskId, reservedNames: RESERVED_ENV_NAMES });
      if (Object.keys(env).length !== 10) throw new Error('decryption lost variables');
    });

    const artifactHashes: Record<string, string> = {};
    for (let i = 0; i < 100; i++) artifactHashes[`public/build/file-${i}.bin`] = sha256Hex(String(i));
    const input = {
      task: { payload: { image: 'taskenv_pass:latest', command: ['true'], maxRunTime: 60, features: { chainOfTrust: true } }, scopes: [], metadata: {} },
      taskId, runId: 0, workerGroup: 'bench', workerId: 'bench-1', artifactHashes,
      environment: { publicIpAddress: '127.0.0.1', privateIpAddress: '127.0.0.1', imageHash: `sha256:${'a'.repeat(64)}` },
    };
    ctx.progress('crypto: chain of trust for 100 artifacts');
    const cotMs = await timeEach(iterations, () => chainOfTrustArtifacts(input, { ed25519: keys.ed25519 }));
    const cotPgpMs = await timeEach(iterations, () => chainOfTrustArtifacts(input, { ed25519: keys.ed25519, openpgp: keys.openpgp }));

    ctx.progress('crypto: masking');
    const maskBytes = (ctx.options.quick ? 64 : 512) * MIB;
    const secrets = Array.from({ length: 10 }, () => randomBytes(24).toString('base64'));
    const plainMbps = median(Array.from({ length: ctx.options.repeats }, () => maskMbps([], maskBytes)));
    const maskedMbps = median(Array.from({ length: ctx.options.repeats }, () => maskMbps(secrets, maskBytes)));
    const oneMbps = median(Array.from({ length: ctx.options.repeats }, () => maskMbps(secrets.slice(0, 1), maskBytes)));

    const rows: Row[] = [
      { benchmark: 'crypto', figure: 'decrypt and check 10 encryptedEnv variables', worker: round(decryptMs, 2), unit: 'ms' },
      { benchmark: 'crypto', figure: 'chain of trust, 100 artifacts: certificate + ed25519 signature', worker: round(cotMs, 2), unit: 'ms' },
      { benchmark: 'crypto', figure: 'chain of trust, 100 artifacts, with the OpenPGP form too', worker: round(cotPgpMs, 2), unit: 'ms' },
      { benchmark: 'crypto', figure: 'task log masking, 1 secret (+ base64 forms)', worker: round(oneMbps, 0), floor: round(plainMbps, 0), unit: 'MB/s', comparison: 'floor: no secrets' },
      { benchmark: 'crypto', figure: 'task log masking, 10 secrets (+ base64 forms)', worker: round(maskedMbps, 0), floor: round(plainMbps, 0), unit: 'MB/s', comparison: 'floor: no secrets' },
    ];
    return {
      name: 'crypto', title: 'Crypto costs', rows,
      details: { iterations, maskBytes, openpgpKey: 'curve25519 (ECDH cv25519 + EdDSA)', node: process.version, openpgp: (openpgp.config as { versionString?: string }).versionString },
      notes: ['In-process, one call at a time (median); the task run pays each once per task.'],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
