// Small statistics for benchmark figures: medians of repeated runs, and rounding for tables.

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export function summary(values: number[]): { median: number; min: number; max: number; p90: number; n: number } {
  return {
    median: round(median(values)), min: round(Math.min(...values)), max: round(Math.max(...values)),
    p90: round(percentile(values, 90)), n: values.length,
  };
}

export function round(value: number, digits = 1): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export const MIB = 1024 * 1024;

/** MB/s (MiB per second) for `bytes` moved in `ms`. */
export function mbPerSecond(bytes: number, ms: number): number {
  return bytes / MIB / (ms / 1000);
}
