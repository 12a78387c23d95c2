// Turns the engine's pull progress events into plain lines for a task log: one line per layer
// state change, and for long downloads/extractions at most one progress line per layer per
// `intervalMs`. Never a flood, never a terminal progress bar.
import { formatBytes } from '../log/format-bytes.ts';
import type { PullEvent } from './engine.ts';

export type LineSink = (line: string) => void;

/** Statuses that repeat with a byte count while a layer moves. */
const repeatingStatuses = new Set(['Downloading', 'Extracting', 'Pushing']);


export class PullProgressReporter {
  private readonly emit: LineSink;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly layers = new Map<string, { status: string; lastLineAt: number }>();

  constructor(emit: LineSink, options: { intervalMs?: number; now?: () => number } = {}) {
    this.emit = emit;
    this.intervalMs = options.intervalMs ?? 5000;
    this.now = options.now ?? Date.now;
  }

  onEvent(event: PullEvent): void {
    const status = (event.status ?? '').trim();
    if (!status) return;
    // Events about the whole image ("Pulling from x" carries the tag as id; digests, summary).
    if (!event.id || /^Pulling from /.test(status)) {
      this.emit(status);
      return;
    }
    const now = this.now();
    const previous = this.layers.get(event.id);
    const changed = previous?.status !== status;
    const due = !previous || now - previous.lastLineAt >= this.intervalMs;
    if (!changed && !(repeatingStatuses.has(status) && due)) return;
    this.layers.set(event.id, { status, lastLineAt: now });
    const { current, total } = event.progressDetail ?? {};
    const amount = repeatingStatuses.has(status) && typeof current === 'number'
      ? typeof total === 'number' && total > 0 ? ` ${formatBytes(current)} of ${formatBytes(total)}` : ` ${formatBytes(current)}`
      : '';
    this.emit(`${event.id}: ${status}${amount}`);
  }
}
