import type { BenchContext } from './lib/context.ts';
import type { BenchmarkResult } from './lib/report.ts';
export async function artifactImage(_ctx: BenchContext): Promise<BenchmarkResult> { throw new Error('not written yet'); }
