// The per-task halves of a run's planned features, and the calls of their hooks in the order
// feature.ts gives: every hook in registry order, cleanup in reverse. The task run holds one of
// these; it does not know which features there are.
import type { UploadResult } from '../artifacts/upload.ts';
import type { WorkerLog } from '../log/worker-log.ts';
import type { TaskCredentials } from '../task/types.ts';
import type { CompleteLog, ContainerAdditions, ContainerExit, Feature, FeatureRunContext, TaskFeature } from './feature.ts';

export interface BeforeCreateResult {
  refusals: string[];
  /** Additions known only now (e.g. decrypted env), in registry order. */
  container: ContainerAdditions[];
}

type Hook = Exclude<keyof TaskFeature, 'cleanup' | 'beforeCreate'>;

export class TaskFeatures {
  readonly #instances: Array<{ name: string; half: TaskFeature }>;
  readonly #log: WorkerLog;
  readonly #ids: { taskId: string; runId: number };
  #cleanedUp: Promise<void> | undefined;

  /** `context` without `options`: each feature gets its own planned options. */
  constructor(provided: readonly Feature[], context: Omit<FeatureRunContext, 'options'>) {
    const byName = new Map(provided.map((f) => [f.name, f]));
    this.#log = context.log;
    this.#ids = { taskId: context.taskId, runId: context.runId };
    this.#instances = context.plan.features.map((planned) => {
      const feature = byName.get(planned.name);
      if (!feature) throw new Error(`the plan has a feature this build does not provide: ${planned.name}`);
      return { name: planned.name, half: feature.forTask({ ...context, options: planned.options }) };
    });
  }

  get names(): string[] { return this.#instances.map((i) => i.name); }

  /** Asks every feature in turn; stops at the first refusal (later features are not asked). */
  async beforeCreate(): Promise<BeforeCreateResult> {
    const out: BeforeCreateResult = { refusals: [], container: [] };
    for (const { half } of this.#instances) {
      const answer = await half.beforeCreate?.();
      if (answer?.container) out.container.push(answer.container);
      if (answer?.refusal) { out.refusals.push(answer.refusal); break; }
    }
    return out;
  }

  afterCreate(containerId: string): Promise<void> { return this.#each('afterCreate', (h) => h.afterCreate?.(containerId)); }
  afterStart(containerId: string): Promise<void> { return this.#each('afterStart', (h) => h.afterStart?.(containerId)); }
  /** Not once cleanup has begun (a reclaim may still land while the run ends). */
  async credentialsChanged(credentials: TaskCredentials): Promise<void> {
    if (this.#cleanedUp) return;
    await this.#each('credentialsChanged', (h) => h.credentialsChanged?.(credentials));
  }
  afterExit(exit: ContainerExit): Promise<void> { return this.#each('afterExit', (h) => h.afterExit?.(exit)); }
  afterArtifacts(uploaded: readonly UploadResult[]): Promise<void> { return this.#each('afterArtifacts', (h) => h.afterArtifacts?.(uploaded)); }

  /** Every feature is told, even when an earlier one threw; the first error is then thrown. */
  async logComplete(log: CompleteLog): Promise<void> {
    let first: Error | undefined;
    for (const { half } of this.#instances) {
      try { await half.logComplete?.(log); } catch (err) { first ??= err as Error; }
    }
    if (first) throw first;
  }

  /** Once (later calls return the first), reverse order; a failing cleanup is logged, never thrown. */
  cleanup(): Promise<void> {
    this.#cleanedUp ??= (async () => {
      for (const { name, half } of [...this.#instances].reverse()) {
        try {
          await half.cleanup();
        } catch (err) {
          this.#log.error('feature cleanup failed', { ...this.#ids, feature: name, error: (err as Error).message });
        }
      }
    })();
    return this.#cleanedUp;
  }

  async #each(hook: Hook, call: (half: TaskFeature) => Promise<void> | undefined): Promise<void> {
    for (const { name, half } of this.#instances) {
      try {
        await call(half);
      } catch (err) {
        throw new Error(`the ${name} feature failed ${hook}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}
