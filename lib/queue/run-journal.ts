// What a worker keeps on disk about each run it holds, so that a worker killed mid-task (SIGKILL,
// OOM, power loss) can resolve those runs when it starts again instead of leaving them to claim
// expiry (20 minutes with default settings): one small JSON file per run under
// <stateDir>/runs, written when the run's log exists, updated at every reclaim (the temporary
// credentials change) and when its container is created, removed once the run is reported.
// The files hold the run's temporary credentials: the folder is 0700, the files 0600, and each
// is replaced by a rename so a crash never leaves half a file.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import type { Credentials } from './taskcluster.ts';
import type { WorkerLog } from '../log/worker-log.ts';

export interface JournalEntry {
  taskId: string;
  runId: number;
  /** The run's current temporary credentials (until takenUntil). */
  credentials: Credentials;
  takenUntil: string;
  /**
   * The task log's backing file, and its artifact names and expiry as the plan gave them. Absent
   * for a run with no log of its own: a task superseded by the run the worker executes
   * (lib/queue/superseder.ts).
   */
  logPath?: string;
  logNames?: { live: string; backing: string };
  expires?: string;
  containerId?: string;
}

/** A journal that cannot be written never fails a run: the run only loses its crash recovery. */
export class RunJournal {
  readonly dir: string;
  readonly #log: WorkerLog | undefined;

  constructor(dir: string, log?: WorkerLog) {
    this.dir = dir;
    this.#log = log;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  #file(taskId: string, runId: number): string {
    return path.join(this.dir, `${taskId}-${runId}.json`);
  }

  write(entry: JournalEntry): void {
    const file = this.#file(entry.taskId, entry.runId);
    try {
      writeFileSync(`${file}.tmp`, JSON.stringify(entry), { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      this.#log?.warn('could not record the run for crash recovery', { taskId: entry.taskId, runId: entry.runId, error: (err as Error).message });
    }
  }

  /** Changes an entry that exists (a run not journalled yet is left alone); a change to the same values writes nothing. */
  update(taskId: string, runId: number, change: Partial<JournalEntry>): void {
    const current = this.read(taskId, runId);
    if (!current) return;
    const same = (Object.keys(change) as (keyof JournalEntry)[]).every((k) => JSON.stringify(current[k]) === JSON.stringify(change[k]));
    if (!same) this.write({ ...current, ...change });
  }

  read(taskId: string, runId: number): JournalEntry | undefined {
    try {
      return JSON.parse(readFileSync(this.#file(taskId, runId), 'utf8')) as JournalEntry;
    } catch {
      return undefined;
    }
  }

  remove(taskId: string, runId: number): void {
    try {
      rmSync(this.#file(taskId, runId), { force: true });
    } catch (err) {
      this.#log?.warn('could not remove a run journal entry', { taskId, runId, error: (err as Error).message });
    }
  }

  /** Every run an earlier process left (unreadable files are returned by name, to be removed). */
  list(): { entries: JournalEntry[]; unreadable: string[] } {
    const entries: JournalEntry[] = [];
    const unreadable: string[] = [];
    for (const name of readdirSync(this.dir)) {
      const file = path.join(this.dir, name);
      if (!name.endsWith('.json')) { rmSync(file, { force: true }); continue; } // a write cut short
      try {
        const entry = JSON.parse(readFileSync(file, 'utf8')) as JournalEntry;
        if (typeof entry.taskId !== 'string' || typeof entry.runId !== 'number' || !entry.credentials) throw new Error('not a run');
        entries.push(entry);
      } catch {
        unreadable.push(file);
      }
    }
    return { entries, unreadable };
  }
}
