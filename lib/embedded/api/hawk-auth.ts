// Hawk authentication as the Taskcluster auth service does it: permanent clients,
// temporary credentials (a signed certificate in `ext`), `authorizedScopes`, bewit signed
// URLs, and the anonymous role for requests without credentials.
import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Hawk from '@hapi/hawk';
import scopeLib from 'taskcluster-lib-scopes';
import { ApiError } from './errors.ts';

export interface StoredClient {
  clientId: string;
  accessToken: string;
  expandedScopes: string[];
  disabled: boolean;
  expires: Date;
}

/** What authentication needs from the auth service's state. */
export interface AuthBackend {
  getClient(clientId: string): StoredClient | undefined;
  expandScopes(scopes: string[]): string[];
  /**
   * Optional: another backend for requests to `url`. The auth service's test endpoints use it
   * to authenticate their fixed test client instead of the stored clients.
   */
  backendFor?(url: URL): AuthBackend | undefined;
}

export interface Authenticated {
  clientId: string | undefined;
  scopes: string[];
  /** When the credentials stop being valid (temporary credentials expire early). */
  expires?: Date;
}

interface Certificate {
  version: number; scopes: string[]; start: number; expiry: number;
  seed: string; signature: string; issuer?: string;
}
interface Ext { certificate?: Certificate | string; authorizedScopes?: string[] }

const fail = (message: string) => new ApiError('AuthenticationFailed', message);
// Clock skew tolerated on certificate start and expiry (the real auth service allows 5 min).
const CERT_SKEW_MS = 5 * 60 * 1000;

function decodeExt(ext: string | undefined): Ext {
  if (!ext) return {};
  try {
    const parsed = JSON.parse(Buffer.from(ext, 'base64').toString('utf8'));
    if (!parsed || typeof parsed !== 'object') throw new Error('not an object');
    return parsed as Ext;
  } catch {
    throw fail('Failed to parse ext: it must be base64-encoded JSON');
  }
}

function extOfRequest(req: IncomingMessage, bewit: string | undefined): string | undefined {
  if (bewit) {
    const decoded = Buffer.from(bewit.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('utf8');
    const parts = decoded.split('\\');
    return parts[3] || undefined;
  }
  const header = req.headers.authorization;
  if (!header) return undefined;
  try {
    return Hawk.utils.parseAuthorizationHeader(header).ext as string | undefined;
  } catch {
    throw fail('Malformed Hawk Authorization header');
  }
}

function tempCredentials(backend: AuthBackend, id: string, cert: Certificate): { key: string; scopes: string[]; expires: Date } {
  if (cert.version !== 1) throw fail('certificate version must be 1');
  for (const f of ['seed', 'signature'] as const) if (typeof cert[f] !== 'string') throw fail(`certificate.${f} must be a string`);
  if (!Array.isArray(cert.scopes) || typeof cert.start !== 'number' || typeof cert.expiry !== 'number') throw fail('certificate is malformed');
  if (!cert.scopes.every((s) => scopeLib.validScope(s))) throw fail('certificate.scopes must be an array of valid scopes');
  if (cert.seed.length !== 44) throw fail('certificate.seed must be 44 characters');
  if (cert.issuer !== undefined && typeof cert.issuer !== 'string') throw fail('certificate.issuer must be a string');
  const issuerId = cert.issuer ?? id;
  if (cert.issuer !== undefined && cert.issuer === id) throw fail('a named temporary credential cannot be issued by its own clientId');
  const issuer = backend.getClient(issuerId);
  if (!issuer || issuer.disabled) throw fail(`Client ${issuerId} (certificate issuer) is unknown or disabled`);
  const now = Date.now();
  if (issuer.expires.getTime() < now) throw fail(`Client ${issuerId} (certificate issuer) has expired`);
  if (cert.start > now + CERT_SKEW_MS) throw fail('temporary credentials are not valid yet (certificate.start is in the future)');
  if (cert.expiry < now - CERT_SKEW_MS) throw fail('temporary credentials have expired (certificate.expiry is in the past)');
  if (cert.expiry - cert.start > 31 * 24 * 3600 * 1000) throw fail('temporary credentials cannot span more than 31 days');
  // Signed content as the real auth service joins it: with no scopes it ends "scopes:" while
  // taskcluster-client signs "scopes:\n", so the real service refuses (401) temporary
  // credentials made with an empty scope list, and so does this one.
  const content = [`version:${cert.version}`];
  if (cert.issuer !== undefined) content.push(`clientId:${id}`, `issuer:${cert.issuer}`);
  content.push(`seed:${cert.seed}`, `start:${cert.start}`, `expiry:${cert.expiry}`, 'scopes:', ...cert.scopes);
  const sig = crypto.createHmac('sha256', issuer.accessToken).update(content.join('\n'));
  const expected = sig.digest('base64');
  const a = Buffer.from(expected); const b = Buffer.from(cert.signature);
  if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) throw fail(cert.issuer !== undefined ? 'ext.certificate.signature is not valid, or wrong clientId provided' : 'ext.certificate.signature is not valid');
  if (cert.issuer !== undefined && !scopeLib.satisfiesExpression(issuer.expandedScopes, `auth:create-client:${id}`)) {
    throw fail(`issuer ${cert.issuer} lacks auth:create-client:${id} needed to name temporary credentials`);
  }
  if (!scopeLib.satisfiesExpression(issuer.expandedScopes, { AllOf: cert.scopes })) {
    throw fail(`the certificate issuer ${issuerId} does not have all the scopes of the certificate`);
  }
  const key = crypto.createHmac('sha256', issuer.accessToken).update(cert.seed).digest('base64')
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=/g, '');
  return { key, scopes: backend.expandScopes(cert.scopes), expires: new Date(Math.min(cert.expiry, issuer.expires.getTime())) };
}

/** Authenticates a request; returns the anonymous scopes when it carries no credentials. */
export async function authenticate(req: IncomingMessage, backendOfService: AuthBackend, url: URL): Promise<Authenticated> {
  const backend = backendOfService.backendFor?.(url) ?? backendOfService;
  const bewit = url.searchParams.get('bewit') ?? undefined;
  if (!req.headers.authorization && !bewit) {
    return { clientId: undefined, scopes: backend.expandScopes(['assume:anonymous']) };
  }
  if (req.headers.authorization && bewit) {
    throw fail('Cannot use two authentication schemes at once: this request has both a bewit in the query string and an Authorization header');
  }
  const ext = decodeExt(extOfRequest(req, bewit));
  let resolved: { scopes: string[]; expires: Date } | undefined;
  const credentialsFunc = (id: string) => {
    let key: string; let scopes: string[]; let expires: Date;
    if (ext.certificate !== undefined) {
      let cert = ext.certificate;
      if (typeof cert === 'string') {
        try { cert = JSON.parse(cert) as Certificate; } catch { throw fail('certificate is not valid JSON'); }
      }
      ({ key, scopes, expires } = tempCredentials(backend, id, cert));
    } else {
      const client = backend.getClient(id);
      if (!client) throw fail(`Client ${id} is not known`);
      if (client.disabled) throw fail(`Client ${id} is disabled`);
      if (client.expires.getTime() < Date.now()) throw fail(`Client ${id} has expired`);
      key = client.accessToken; scopes = client.expandedScopes; expires = client.expires;
    }
    resolved = { scopes, expires };
    return { id, key, algorithm: 'sha256' as const };
  };
  let clientId: string;
  try {
    const result = bewit
      ? await Hawk.uri.authenticate(req, credentialsFunc, {})
      : await Hawk.server.authenticate(req, credentialsFunc, { timestampSkewSec: 15 * 60 });
    clientId = result.credentials.id as string;
  } catch (err) {
    if (err instanceof ApiError) throw err;
    const message = (err as Error).message || 'Bad Hawk signature';
    throw fail(`Hawk authentication failed: ${message}`);
  }
  if (!resolved) throw fail('no credentials resolved');
  let scopes = resolved.scopes;
  if (ext.authorizedScopes !== undefined) {
    if (!Array.isArray(ext.authorizedScopes) || !ext.authorizedScopes.every((s) => scopeLib.validScope(s))) {
      throw fail('authorizedScopes must be an array of valid scopes');
    }
    if (!scopeLib.satisfiesExpression(scopes, { AllOf: ext.authorizedScopes })) {
      throw fail('authorizedScopes must be satisfied by the scopes of the credentials');
    }
    scopes = backend.expandScopes(ext.authorizedScopes);
  }
  return { clientId, scopes, expires: resolved.expires };
}
