// The scopes of one task run: task.scopes as given, and what their roles grant, asked of the
// auth service at most once per run and only when the raw scopes fall short. Caches, images,
// devices and features all check through this one object, so a run expands its roles once.
import scopeLib from 'taskcluster-lib-scopes';

/** Expands a scope set with the roles it assumes (the auth service's expandScopes). */
export type ScopeExpander = (scopes: string[]) => Promise<string[]>;

/** What lower layers receive: does the task hold any one of these scopes? */
export interface ScopeSet {
  /** task.scopes as the task gave them. */
  readonly raw: readonly string[];
  /** Whether the scopes, or when they fall short the roles they assume, satisfy any one of `anyOf`. */
  allows(anyOf: readonly string[]): Promise<boolean>;
  /** The raw scopes with their roles expanded (fetched once, then remembered). */
  expanded(): Promise<readonly string[]>;
}

export function satisfiesAnyOf(scopes: readonly string[], anyOf: readonly string[]): boolean {
  return scopeLib.satisfiesExpression([...scopes], { AnyOf: [...anyOf] });
}

export class TaskScopes implements ScopeSet {
  readonly raw: readonly string[];
  readonly #expand: ScopeExpander | undefined;
  #expanded: Promise<readonly string[]> | undefined;

  /** Without an expander, roles are not looked through. */
  constructor(raw: readonly string[], expand?: ScopeExpander) {
    this.raw = [...raw];
    this.#expand = expand;
  }

  async allows(anyOf: readonly string[]): Promise<boolean> {
    if (satisfiesAnyOf(this.raw, anyOf)) return true;
    if (!this.#expand || this.raw.length === 0) return false;
    return satisfiesAnyOf(await this.expanded(), anyOf);
  }

  expanded(): Promise<readonly string[]> {
    if (!this.#expand || this.raw.length === 0) return Promise.resolve(this.raw);
    // A failed expansion is not remembered: the next question asks again.
    this.#expanded ??= this.#expand([...this.raw]).catch((err: unknown) => { this.#expanded = undefined; throw err; });
    return this.#expanded;
  }
}
