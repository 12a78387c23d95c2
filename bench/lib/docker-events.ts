// The engine's event stream, for the worker's containers: when each was created, started,
// died and destroyed, stamped by the daemon (timeNano). It splits a task's time between the
// worker and the engine without any log line inside the worker.
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import Dockerode from 'dockerode';
import { LABEL_TASK_ID } from '../../lib/docker/labels.ts';

export interface ContainerTimes { id: string; create?: number; start?: number; die?: number; destroy?: number; exitCode?: string }

export class ContainerEvents {
  readonly byTask = new Map<string, ContainerTimes>();
  readonly imageEvents: Array<{ action: string; id: string; time: number }> = [];
  #stream: Readable | undefined;
  #waiters: Array<{ taskId: string; action: keyof ContainerTimes; resolve: (t: ContainerTimes) => void }> = [];

  static async open(docker: Dockerode): Promise<ContainerEvents> {
    const events = new ContainerEvents();
    const stream = await docker.getEvents({ filters: { type: ['container', 'image'] } }) as unknown as Readable;
    events.#stream = stream;
    createInterface({ input: stream }).on('line', (line) => events.#onLine(line));
    stream.on('error', () => undefined);
    return events;
  }

  #onLine(line: string): void {
    let e: { Type?: string; Action?: string; id?: string; timeNano?: number; Actor?: { ID?: string; Attributes?: Record<string, string> } };
    try { e = JSON.parse(line); } catch { return; }
    const time = (e.timeNano ?? 0) / 1e6;
    const action = e.Action ?? '';
    if (e.Type === 'image') {
      this.imageEvents.push({ action, id: e.Actor?.ID ?? e.id ?? '', time });
      return;
    }
    const taskId = e.Actor?.Attributes?.[LABEL_TASK_ID];
    if (!taskId || !['create', 'start', 'die', 'destroy'].includes(action)) return;
    const times = this.byTask.get(taskId) ?? { id: e.Actor?.ID ?? e.id ?? '' };
    (times as unknown as Record<string, number>)[action] ??= time;
    if (action === 'die') times.exitCode = e.Actor?.Attributes?.exitCode;
    this.byTask.set(taskId, times);
    for (const w of [...this.#waiters]) {
      if (w.taskId === taskId && times[w.action] !== undefined) { this.#waiters.splice(this.#waiters.indexOf(w), 1); w.resolve(times); }
    }
  }

  /** Resolves once the task's container reached `action` (already or later). */
  when(taskId: string, action: 'create' | 'start' | 'die' | 'destroy', timeoutMs = 120_000): Promise<ContainerTimes> {
    const times = this.byTask.get(taskId);
    if (times?.[action] !== undefined) return Promise.resolve(times);
    return new Promise((resolve, reject) => {
      const waiter = { taskId, action, resolve: (t: ContainerTimes) => { clearTimeout(timer); resolve(t); } };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error(`no container ${action} event for task ${taskId} after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  close(): void {
    this.#stream?.destroy();
  }
}
