// Chain of trust (payload.features.chainOfTrust): after a task's artifacts are uploaded, the
// worker publishes a certificate of what ran where and what it produced, signed with its key:
//   public/chain-of-trust.json      the certificate, pretty JSON (2 spaces, as generic-worker writes)
//   public/chain-of-trust.json.sig  detached ed25519 signature of exactly those bytes (64 bytes)
//   public/chainOfTrust.json.asc    optional: the same text cleartext-signed with the OpenPGP key
//                                   (docker-worker's form until 2019)
// plus public/logs/certified.log (the task log, whose sha256 the certificate lists), uploaded by
// the caller. Verifiers (scriptworker) check the signature with the worker pool's ed25519 public
// key, then each listed artifact's sha256, the task definition and environment.imageArtifactHash
// ("sha256:<hex>", against the upstream docker-image task's own certificate).
import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import type * as openpgp from 'openpgp';
import { openpgpLib } from './openpgp-lib.ts';

export const CHAIN_OF_TRUST_JSON = 'public/chain-of-trust.json';
export const CHAIN_OF_TRUST_SIG = 'public/chain-of-trust.json.sig';
export const CHAIN_OF_TRUST_ASC = 'public/chainOfTrust.json.asc';
export const CERTIFIED_LOG = 'public/logs/certified.log';
/** Artifact names the feature publishes itself: a task's own artifacts may not use them. */
export const CHAIN_OF_TRUST_ARTIFACT_NAMES = [CHAIN_OF_TRUST_JSON, CHAIN_OF_TRUST_SIG, CHAIN_OF_TRUST_ASC, CERTIFIED_LOG] as const;

export interface ChainOfTrustEnvironment {
  publicIpAddress: string;
  privateIpAddress: string;
  /** The image the container ran: the engine's image id ("sha256:<hex>"). */
  imageHash: string;
  /** When the image came from a task artifact: sha256 of that artifact, "sha256:<hex>". */
  imageArtifactHash?: string;
  instanceId?: string;
  instanceType?: string;
  region?: string;
}

export interface ChainOfTrustCertificate {
  chainOfTrustVersion: 1;
  artifacts: Record<string, { sha256: string }>;
  task: Record<string, unknown>;
  taskId: string;
  runId: number;
  workerGroup: string;
  workerId: string;
  environment: ChainOfTrustEnvironment;
}

export interface ChainOfTrustInput {
  /** The full task definition, as queue.task(taskId) returns it. */
  task: Record<string, unknown>;
  taskId: string;
  runId: number;
  workerGroup: string;
  workerId: string;
  /** Every artifact uploaded for this run (certified.log included) by name: sha256 in hex. */
  artifactHashes: Readonly<Record<string, string>>;
  /** imageArtifactHash may be hex or already "sha256:<hex>" here; the certificate has the latter. */
  environment: ChainOfTrustEnvironment;
}

export interface ChainOfTrustKeys {
  ed25519: KeyObject;
  /** Given: the legacy OpenPGP form is produced too. */
  openpgp?: openpgp.PrivateKey;
}

/** One file to upload as an artifact. */
export interface ChainOfTrustArtifact {
  name: string;
  contentType: string;
  body: Buffer;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function chainOfTrustCertificate(input: ChainOfTrustInput): ChainOfTrustCertificate {
  const artifacts: Record<string, { sha256: string }> = {};
  for (const name of Object.keys(input.artifactHashes).sort()) {
    const sha256 = input.artifactHashes[name]!.toLowerCase();
    if (!SHA256_HEX.test(sha256)) throw new Error(`chain of trust: artifact ${name} has no sha256 (got ${JSON.stringify(input.artifactHashes[name])})`);
    artifacts[name] = { sha256 };
  }
  const e = input.environment;
  const environment: ChainOfTrustEnvironment = { publicIpAddress: e.publicIpAddress, privateIpAddress: e.privateIpAddress, imageHash: e.imageHash };
  if (e.imageArtifactHash) {
    const hex = e.imageArtifactHash.replace(/^sha256:/, '').toLowerCase();
    if (!SHA256_HEX.test(hex)) throw new Error(`chain of trust: imageArtifactHash ${JSON.stringify(e.imageArtifactHash)} is not a sha256`);
    environment.imageArtifactHash = `sha256:${hex}`;
  }
  // Like docker-worker: the host's instance fields only when the host has them.
  if (e.instanceId) environment.instanceId = e.instanceId;
  if (e.instanceType) environment.instanceType = e.instanceType;
  if (e.region) environment.region = e.region;
  return {
    chainOfTrustVersion: 1,
    artifacts,
    task: input.task,
    taskId: input.taskId,
    runId: input.runId,
    workerGroup: input.workerGroup,
    workerId: input.workerId,
    environment,
  };
}

/** The bytes of public/chain-of-trust.json: what the signature covers. */
export function certificateBytes(certificate: ChainOfTrustCertificate): Buffer {
  return Buffer.from(JSON.stringify(certificate, null, 2));
}

/** The detached ed25519 signature (64 raw bytes) of `bytes`. */
export function signCertificate(bytes: Buffer, ed25519: KeyObject): Buffer {
  if (ed25519.asymmetricKeyType !== 'ed25519' || ed25519.type !== 'private') throw new Error('chain of trust needs an ed25519 private key');
  return sign(null, bytes, ed25519);
}

/** True when `signature` is the worker key's ed25519 signature of exactly `bytes`. */
export function verifyCertificate(bytes: Buffer, signature: Buffer, ed25519PublicKey: KeyObject): boolean {
  return signature.length === 64 && verify(null, bytes, ed25519PublicKey, signature);
}

/** The certificate cleartext-signed with the OpenPGP key (public/chainOfTrust.json.asc). */
export async function openpgpSignCertificate(bytes: Buffer, key: openpgp.PrivateKey): Promise<string> {
  const lib = await openpgpLib();
  const message = await lib.createCleartextMessage({ text: `${bytes.toString('utf8')}\n` });
  const armored = await lib.sign({ message, signingKeys: key, format: 'armored' });
  // openpgp.js writes the text with CRLF; the signature covers line-ending-canonical text, so
  // plain LF (as generic-worker and gpg write it) verifies the same and reads like the .json.
  return armored.replace(/\r\n/g, '\n');
}

/** Verifies a cleartext-signed certificate; resolves to the signed text, rejects when the signature does not hold. */
export async function openpgpVerifyCertificate(armored: string, publicKey: openpgp.Key): Promise<string> {
  const lib = await openpgpLib();
  const message = await lib.readCleartextMessage({ cleartextMessage: armored });
  const result = await lib.verify({ message, verificationKeys: publicKey, expectSigned: true });
  return result.data;
}

/**
 * The certificate and its signature(s), ready to upload (after every other artifact and the
 * certified log, whose hashes `input.artifactHashes` holds).
 */
export async function chainOfTrustArtifacts(input: ChainOfTrustInput, keys: ChainOfTrustKeys): Promise<ChainOfTrustArtifact[]> {
  const bytes = certificateBytes(chainOfTrustCertificate(input));
  const out: ChainOfTrustArtifact[] = [
    { name: CHAIN_OF_TRUST_JSON, contentType: 'application/json', body: bytes },
    { name: CHAIN_OF_TRUST_SIG, contentType: 'application/octet-stream', body: signCertificate(bytes, keys.ed25519) },
  ];
  if (keys.openpgp) out.push({ name: CHAIN_OF_TRUST_ASC, contentType: 'text/plain; charset=utf-8', body: Buffer.from(await openpgpSignCertificate(bytes, keys.openpgp)) });
  return out;
}

/** sha256 in hex of some bytes (the certified log, a small artifact). */
export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
