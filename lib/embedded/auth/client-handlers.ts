// The auth service's client endpoints: list, get, create, reset, update, enable, disable,
// delete. Static clients (`static/...`) come from configuration and cannot be changed here.
import crypto from 'node:crypto';
import { Reply, type ApiRequest, type Handler } from '../api/service.ts';
import { conflict, notFound } from '../api/errors.ts';
import type { AuthState, ClientRecord } from './auth-state.ts';
import {
  checkClientId, decodeContinuation, encodeContinuation, forbidDoubleStar, forbidStaticClient, parseLimit,
} from './request-checks.ts';

interface ClientInput { description: string; expires: string; scopes?: string[]; deleteOnExpiration?: boolean }

/** How long an identical createClient is answered as a retry rather than a conflict. */
const IDEMPOTENT_RETRY_MS = 15 * 60 * 1000;

function newAccessToken(): string {
  return crypto.randomBytes(33).toString('base64url');
}

export function clientJson(state: AuthState, c: ClientRecord) {
  return {
    clientId: c.clientId,
    description: c.description,
    expires: new Date(c.expires).toISOString(),
    created: c.created,
    lastModified: c.lastModified,
    lastDateUsed: c.lastDateUsed,
    lastRotated: c.lastRotated,
    deleteOnExpiration: c.deleteOnExpiration,
    scopes: c.scopes,
    expandedScopes: state.expandScopes(c.scopes),
    disabled: c.disabled,
  };
}

function existingClient(state: AuthState, clientId: string): ClientRecord {
  const client = state.findClient(clientId);
  if (!client) throw notFound(`Client ${clientId}`);
  return client;
}

/** Route parameter checks shared by the endpoints that change a client. */
function changeableClientId(req: ApiRequest): string {
  const clientId = req.params.clientId;
  checkClientId(clientId);
  forbidStaticClient(clientId);
  return clientId;
}

export function clientHandlers(state: AuthState): Record<string, Handler> {
  return {
    listClients(req) {
      const prefix = req.query.prefix;
      if (prefix !== undefined) checkClientId(prefix, 'prefix');
      const limit = parseLimit(req.query.limit, 1000);
      const page = state.listClients({ prefix, after: decodeContinuation(req.query.continuationToken), limit: limit + 1 });
      const more = page.length > limit;
      const clients = page.slice(0, limit);
      return {
        clients: clients.map((c) => clientJson(state, c)),
        ...(more ? { continuationToken: encodeContinuation(clients[clients.length - 1].clientId) } : {}),
      };
    },

    client(req) {
      checkClientId(req.params.clientId);
      return clientJson(state, existingClient(state, req.params.clientId));
    },

    createClient(req) {
      const clientId = changeableClientId(req);
      const input = req.body as ClientInput;
      const scopes = input.scopes ?? [];
      forbidDoubleStar(scopes);
      req.authorize({ scopes });
      const now = new Date();
      const expires = new Date(input.expires).toISOString();
      const record: ClientRecord = {
        clientId, description: input.description, accessToken: newAccessToken(), expires, scopes,
        disabled: false, deleteOnExpiration: input.deleteOnExpiration === true,
        created: now.toISOString(), lastModified: now.toISOString(), lastDateUsed: now.toISOString(), lastRotated: now.toISOString(),
      };
      if (state.insertClient(record)) return { ...clientJson(state, record), accessToken: record.accessToken };
      // A retry of the same request (identical settings, shortly after) gets the same answer.
      const existing = state.findClient(clientId);
      if (existing && existing.description === input.description && existing.expires === expires &&
          JSON.stringify(existing.scopes) === JSON.stringify(scopes) && !existing.disabled &&
          Date.parse(existing.created) >= now.getTime() - IDEMPOTENT_RETRY_MS) {
        return { ...clientJson(state, existing), accessToken: existing.accessToken };
      }
      throw conflict(`Client ${clientId} already exists with different settings. ` +
        'Use updateClient to change it, or deleteClient first to replace it.', { clientId });
    },

    resetAccessToken(req) {
      const clientId = changeableClientId(req);
      const client = existingClient(state, clientId);
      const updated = { ...client, accessToken: newAccessToken(), lastRotated: new Date().toISOString() };
      state.writeClient(updated);
      return { ...clientJson(state, updated), accessToken: updated.accessToken };
    },

    updateClient(req) {
      const clientId = changeableClientId(req);
      const input = req.body as ClientInput;
      forbidDoubleStar(input.scopes);
      const client = existingClient(state, clientId);
      // The caller must hold only the scopes being added, not those the client already has.
      const scopesAdded = (input.scopes ?? []).filter((s) => !client.scopes.includes(s));
      req.authorize({ scopesAdded });
      const updated: ClientRecord = {
        ...client,
        description: input.description,
        expires: new Date(input.expires).toISOString(),
        deleteOnExpiration: input.deleteOnExpiration === true,
        scopes: input.scopes ?? client.scopes,
        lastModified: new Date().toISOString(),
      };
      state.writeClient(updated);
      return clientJson(state, updated);
    },

    enableClient(req) {
      const client = existingClient(state, changeableClientId(req));
      const updated = { ...client, disabled: false };
      if (client.disabled) state.writeClient(updated);
      return clientJson(state, updated);
    },

    disableClient(req) {
      const client = existingClient(state, changeableClientId(req));
      const updated = { ...client, disabled: true };
      if (!client.disabled) state.writeClient(updated);
      return clientJson(state, updated);
    },

    deleteClient(req) {
      state.deleteClient(changeableClientId(req));
      return new Reply(204, undefined);
    },
  };
}
