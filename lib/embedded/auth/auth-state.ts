// The auth service's state: clients and roles in SQLite, with in-memory caches for the hot
// path (every request of every service looks up its client and expands scopes). Any write
// goes through this class, which drops the affected cache entries.
import type { Database } from '../store.ts';
import { transaction } from '../store.ts';
import type { AuthBackend, StoredClient } from '../api/hawk-auth.ts';
import { RoleResolver, validateRoles, type RoleRule } from './role-resolver.ts';
import { isTestAuthenticationPath, testSignatureOnlyBackend } from './test-client.ts';

export interface ClientRecord {
  clientId: string;
  description: string;
  accessToken: string;
  /** ISO timestamps. */
  expires: string;
  scopes: string[];
  disabled: boolean;
  deleteOnExpiration: boolean;
  created: string;
  lastModified: string;
  lastDateUsed: string;
  lastRotated: string;
}

export interface RoleRecord {
  roleId: string;
  description: string;
  scopes: string[];
  created: string;
  lastModified: string;
}

/** The roles every deployment starts with. */
export const DEFAULT_ROLES: Omit<RoleRecord, 'created' | 'lastModified'>[] = [{
  roleId: 'anonymous',
  description: 'Scopes of requests made without credentials: reading public artifacts, tasks, statuses and the index.',
  scopes: [
    'index:find-task:*', 'index:list-namespaces:*', 'index:list-tasks:*',
    'purge-cache:purge-requests:*',
    'queue:get-artifact:public/*', 'queue:get-task:*', 'queue:list-artifacts:*',
    'queue:list-task-group:*', 'queue:pending-count:*', 'queue:status:*',
  ],
}];

const STATIC_EXPIRES = '3000-01-01T00:00:00.000Z';
const LAST_USED_RESOLUTION_MS = 6 * 3600 * 1000;
const CLIENT_CACHE_LIMIT = 10_000;

type Row = Record<string, unknown>;

function clientFromRow(row: Row): ClientRecord {
  return {
    clientId: row.client_id as string,
    description: row.description as string,
    accessToken: row.access_token as string,
    expires: row.expires as string,
    scopes: JSON.parse(row.scopes as string) as string[],
    disabled: row.disabled === 1,
    deleteOnExpiration: row.delete_on_expiration === 1,
    created: row.created as string,
    lastModified: row.last_modified as string,
    lastDateUsed: row.last_date_used as string,
    lastRotated: row.last_rotated as string,
  };
}

function roleFromRow(row: Row): RoleRecord {
  return {
    roleId: row.role_id as string,
    description: row.description as string,
    scopes: JSON.parse(row.scopes as string) as string[],
    created: row.created as string,
    lastModified: row.last_modified as string,
  };
}

export class AuthState implements AuthBackend {
  private readonly db: Database;
  private resolver: RoleResolver;
  /** Clients by id as authentication sees them; null remembers an unknown id. */
  private readonly clientCache = new Map<string, { client: StoredClient; lastDateUsed: number } | null>();

  constructor(db: Database) {
    this.db = db;
    db.exec(`
      CREATE TABLE IF NOT EXISTS auth_clients (
        client_id TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        access_token TEXT NOT NULL,
        expires TEXT NOT NULL,
        scopes TEXT NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0,
        delete_on_expiration INTEGER NOT NULL DEFAULT 0,
        created TEXT NOT NULL,
        last_modified TEXT NOT NULL,
        last_date_used TEXT NOT NULL,
        last_rotated TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS auth_roles (
        role_id TEXT PRIMARY KEY,
        description TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created TEXT NOT NULL,
        last_modified TEXT NOT NULL
      );`);
    this.resolver = new RoleResolver(this.roles());
  }

  // ---- AuthBackend: the hot path -------------------------------------------------------

  getClient(clientId: string): StoredClient | undefined {
    let entry = this.clientCache.get(clientId);
    if (entry === undefined) {
      const record = this.findClient(clientId);
      entry = record ? {
        client: {
          clientId, accessToken: record.accessToken, expandedScopes: this.resolver.resolve(record.scopes),
          disabled: record.disabled, expires: new Date(record.expires),
        },
        lastDateUsed: Date.parse(record.lastDateUsed),
      } : null;
      if (this.clientCache.size >= CLIENT_CACHE_LIMIT) this.clientCache.clear();
      this.clientCache.set(clientId, entry);
    }
    if (!entry) return undefined;
    const now = Date.now();
    if (entry.lastDateUsed < now - LAST_USED_RESOLUTION_MS) {
      entry.lastDateUsed = now;
      this.db.prepare('UPDATE auth_clients SET last_date_used = ? WHERE client_id = ?').run(new Date(now).toISOString(), clientId);
    }
    return entry.client;
  }

  expandScopes(scopes: string[]): string[] {
    return this.resolver.resolve(scopes);
  }

  /** The auth service's test endpoints authenticate the fixed test client, not stored clients. */
  backendFor(url: URL): AuthBackend | undefined {
    return isTestAuthenticationPath(url) ? testSignatureOnlyBackend : undefined;
  }

  // ---- clients ---------------------------------------------------------------------------

  /** Creates or updates a client managed by configuration (`static/...`). */
  ensureStaticClient(clientId: string, accessToken: string, scopes: string[], description: string): void {
    const now = new Date().toISOString();
    const existing = this.findClient(clientId);
    if (!existing) {
      this.insertClient({
        clientId, description, accessToken, expires: STATIC_EXPIRES, scopes, disabled: false, deleteOnExpiration: false,
        created: now, lastModified: now, lastDateUsed: now, lastRotated: now,
      });
      return;
    }
    const same = existing.accessToken === accessToken && existing.description === description &&
      JSON.stringify(existing.scopes) === JSON.stringify(scopes) && !existing.disabled && existing.expires === STATIC_EXPIRES;
    if (same) return;
    this.writeClient({
      ...existing, accessToken, description, scopes, disabled: false, expires: STATIC_EXPIRES, lastModified: now,
      lastRotated: existing.accessToken === accessToken ? existing.lastRotated : now,
    });
  }

  findClient(clientId: string): ClientRecord | undefined {
    const row = this.db.prepare('SELECT * FROM auth_clients WHERE client_id = ?').get(clientId) as Row | undefined;
    return row ? clientFromRow(row) : undefined;
  }

  /** Clients in clientId order, after `after`, whose id starts with `prefix`. */
  listClients(options: { prefix?: string; after?: string; limit: number }): ClientRecord[] {
    const prefix = options.prefix ?? '';
    const rows = this.db.prepare(
      `SELECT * FROM auth_clients WHERE client_id > ? AND substr(client_id, 1, ?) = ?
       ORDER BY client_id LIMIT ?`,
    ).all(options.after ?? '', prefix.length, prefix, options.limit) as Row[];
    return rows.map(clientFromRow);
  }

  /** Inserts a client; false when the clientId is taken. */
  insertClient(record: ClientRecord): boolean {
    const result = this.db.prepare(
      `INSERT INTO auth_clients (client_id, description, access_token, expires, scopes, disabled, delete_on_expiration,
         created, last_modified, last_date_used, last_rotated)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_id) DO NOTHING`,
    ).run(record.clientId, record.description, record.accessToken, record.expires, JSON.stringify(record.scopes),
      record.disabled ? 1 : 0, record.deleteOnExpiration ? 1 : 0,
      record.created, record.lastModified, record.lastDateUsed, record.lastRotated);
    this.clientCache.delete(record.clientId);
    return Number(result.changes) === 1;
  }

  /** Replaces a stored client with `record` (same clientId). */
  writeClient(record: ClientRecord): void {
    this.db.prepare(
      `UPDATE auth_clients SET description = ?, access_token = ?, expires = ?, scopes = ?, disabled = ?,
         delete_on_expiration = ?, last_modified = ?, last_date_used = ?, last_rotated = ?
       WHERE client_id = ?`,
    ).run(record.description, record.accessToken, record.expires, JSON.stringify(record.scopes), record.disabled ? 1 : 0,
      record.deleteOnExpiration ? 1 : 0, record.lastModified, record.lastDateUsed, record.lastRotated, record.clientId);
    this.clientCache.delete(record.clientId);
  }

  deleteClient(clientId: string): void {
    this.db.prepare('DELETE FROM auth_clients WHERE client_id = ?').run(clientId);
    this.clientCache.delete(clientId);
  }

  /** Deletes expired clients marked deleteOnExpiration; returns how many. */
  purgeExpiredClients(now = new Date()): number {
    const rows = this.db.prepare(
      'DELETE FROM auth_clients WHERE delete_on_expiration = 1 AND expires < ? RETURNING client_id',
    ).all(now.toISOString()) as Row[];
    for (const row of rows) this.clientCache.delete(row.client_id as string);
    return rows.length;
  }

  // ---- roles -------------------------------------------------------------------------------

  ensureDefaultRoles(): void {
    const now = new Date().toISOString();
    for (const role of DEFAULT_ROLES) {
      this.db.prepare(
        `INSERT INTO auth_roles (role_id, description, scopes, created, last_modified) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (role_id) DO NOTHING`,
      ).run(role.roleId, role.description, JSON.stringify(role.scopes), now, now);
    }
    this.rolesChanged();
  }

  /** All roles in roleId order. */
  roles(): RoleRecord[] {
    return (this.db.prepare('SELECT * FROM auth_roles ORDER BY role_id').all() as Row[]).map(roleFromRow);
  }

  findRole(roleId: string): RoleRecord | undefined {
    const row = this.db.prepare('SELECT * FROM auth_roles WHERE role_id = ?').get(roleId) as Row | undefined;
    return row ? roleFromRow(row) : undefined;
  }

  /**
   * Creates or replaces a role after checking that the roles stay valid together (throws
   * RoleRuleError). `decide` sees the stored role inside the transaction and returns the
   * record to store, or undefined to leave things as they are.
   */
  putRole(roleId: string, decide: (existing: RoleRecord | undefined) => RoleRecord | undefined): RoleRecord | undefined {
    const stored = transaction(this.db, () => {
      const existing = this.findRole(roleId);
      const next = decide(existing);
      if (!next) return undefined;
      const others: RoleRule[] = this.roles().filter((r) => r.roleId !== roleId);
      validateRoles([...others, next]);
      this.db.prepare(
        `INSERT INTO auth_roles (role_id, description, scopes, created, last_modified) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (role_id) DO UPDATE SET description = excluded.description, scopes = excluded.scopes,
           last_modified = excluded.last_modified`,
      ).run(next.roleId, next.description, JSON.stringify(next.scopes), next.created, next.lastModified);
      return next;
    });
    if (stored) this.rolesChanged();
    return stored;
  }

  deleteRole(roleId: string): void {
    const result = this.db.prepare('DELETE FROM auth_roles WHERE role_id = ?').run(roleId);
    if (Number(result.changes) > 0) this.rolesChanged();
  }

  /** Expanded scopes of a role: what `assume:<roleId>` grants. */
  roleExpandedScopes(roleId: string): string[] {
    return this.resolver.resolve([`assume:${roleId}`]);
  }

  private rolesChanged(): void {
    this.resolver = new RoleResolver(this.roles());
    this.clientCache.clear();
  }
}
