// Results of a run: one table row per figure (worker, floor, how they compare, the target and
// whether it was met), each benchmark's details, and the machine they were measured on.
// Written as bench/results/latest.json and latest.md; the table is also printed.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import type { BenchOptions } from './options.ts';
import { REPO_ROOT } from './worker-process.ts';

export interface Row {
  benchmark: string;
  figure: string;
  worker: number | string | null;
  floor?: number | string | null;
  unit: string;
  /** How the worker compares with the floor (ratio, difference). */
  comparison?: string;
  target?: string;
  /** Whether the target was met; undefined when the row has no target. */
  met?: boolean;
}

export interface BenchmarkResult {
  name: string;
  title: string;
  rows: Row[];
  details: Record<string, unknown>;
  notes?: string[];
  error?: string;
  seconds?: number;
}

export interface Machine {
  date: string;
  hostname: string;
  nproc: number;
  memoryGb: number;
  cpuModel: string;
  kernel: string;
  node: string;
  docker: string;
  dockerApi: string;
  storageDriver: string;
  gitCommit: string;
  gitDirty: boolean;
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
}

export async function describeMachine(engine: Dockerode): Promise<Machine> {
  const version = await engine.version();
  const info = await engine.info() as { Driver?: string };
  const git = (args: string[]) => { try { return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim(); } catch { return ''; } };
  return {
    date: new Date().toISOString(),
    hostname: os.hostname(),
    nproc: os.availableParallelism(),
    memoryGb: Math.round(os.totalmem() / 1024 ** 3 * 10) / 10,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    kernel: os.release(),
    node: process.version,
    docker: version.Version,
    dockerApi: version.ApiVersion,
    storageDriver: info.Driver ?? 'unknown',
    gitCommit: git(['rev-parse', '--short', 'HEAD']),
    gitDirty: git(['status', '--porcelain', '--untracked-files=no']) !== '',
    loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

function cell(value: number | string | null | undefined, unit: string): string {
  if (value === null || value === undefined) return '–';
  if (typeof value === 'string') return escape(value);
  return `${value}${unit ? ` ${unit}` : ''}`;
}

/** A pipe inside a table cell ends the cell; escape it. */
function escape(text: string | undefined): string {
  return (text ?? '').replace(/\|/g, '\\|');
}

function verdict(row: Row): string {
  if (row.met === undefined) return '';
  return row.met ? 'met' : '**missed**';
}

export function markdownTable(results: BenchmarkResult[]): string {
  const lines = [
    '| benchmark | figure | worker | floor (raw engine) | worker vs floor | target | |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    if (r.error) {
      lines.push(`| ${r.title} | – | error: ${escape(r.error.split('\n')[0]!.slice(0, 200))} | | | | |`);
      continue;
    }
    for (const row of r.rows) {
      lines.push(`| ${escape(row.benchmark)} | ${escape(row.figure)} | ${cell(row.worker, row.unit)} | ${cell(row.floor, row.unit)} | ${escape(row.comparison)} | ${escape(row.target)} | ${verdict(row)} |`);
    }
  }
  return lines.join('\n');
}

function machineLine(machine: Machine): string {
  return `${machine.date} · ${machine.nproc} CPUs (${machine.cpuModel}) · ${machine.memoryGb} GB · Linux ${machine.kernel} · ` +
    `Docker ${machine.docker} (API ${machine.dockerApi}, ${machine.storageDriver}) · Node ${machine.node} · commit ${machine.gitCommit}${machine.gitDirty ? ' (+ local changes)' : ''}`;
}

export function markdownReport(machine: Machine, options: BenchOptions, results: BenchmarkResult[]): string {
  const out: string[] = [];
  out.push(`# Benchmarks: the worker against the Docker engine's floor`);
  out.push('');
  out.push(machineLine(machine));
  out.push('');
  out.push(`Run: ${options.quick ? '**quick** (BENCH_QUICK=1: small sizes, not comparable with full runs)' : 'full'}, ` +
    `${options.repeats} repeat(s) per figure (medians), load average ${machine.loadAverageAtStart.join(' / ')} at start` +
    `${machine.loadAverageAtEnd ? `, ${machine.loadAverageAtEnd.join(' / ')} at end` : ''}. ` +
    'Benchmarks report figures; they never fail on timing.');
  out.push('');
  out.push(markdownTable(results));
  out.push('');
  for (const r of results) {
    if (!r.notes?.length && !r.error) continue;
    out.push(`## ${r.title}`);
    out.push('');
    if (r.error) out.push('```\n' + r.error + '\n```');
    for (const n of r.notes ?? []) out.push(`- ${n}`);
    out.push('');
  }
  out.push('Details (every sample, breakdowns): `latest.json`.');
  return out.join('\n') + '\n';
}

export function writeResults(dir: string, machine: Machine, options: BenchOptions, results: BenchmarkResult[]): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const json = path.join(dir, 'latest.json');
  const md = path.join(dir, 'latest.md');
  writeFileSync(json, JSON.stringify({ machine, options, results }, null, 2) + '\n');
  writeFileSync(md, markdownReport(machine, options, results));
  return { json, md };
}

export const README_START = '<!-- bench-table -->';
export const README_END = '<!-- /bench-table -->';

/**
 * Puts the table of a full run into the README between its bench-table markers (a quick or
 * partial run never replaces it). Returns whether the README changed.
 */
export function updateReadme(readmePath: string, machine: Machine, results: BenchmarkResult[]): boolean {
  const text = readFileSync(readmePath, 'utf8');
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start < 0 || end < start) return false;
  const block = [README_START, '', machineLine(machine), '', markdownTable(results), '', README_END].join('\n');
  const next = text.slice(0, start) + block + text.slice(end + README_END.length);
  if (next === text) return false;
  writeFileSync(readmePath, next);
  return true;
}
