// chainOfTrust (payload.features.chainOfTrust; no scope, as in docker-worker): once the task
// log is complete and uploaded, the worker publishes, in this order,
//   public/logs/certified.log       the complete task log (the same bytes as the backing log)
//   public/chain-of-trust.json      the certificate: every artifact this run uploaded, with its
//                                   sha256 (certified.log included), the task, the environment
//   public/chain-of-trust.json.sig  its detached ed25519 signature
//   public/chainOfTrust.json.asc    when the pool sets chainOfTrust.openpgpSignature
// (lib/crypto/chain-of-trust.ts builds and signs them). The hook is logComplete, not
// afterArtifacts: the certified log must be the whole log, footer included, whose hash the
// certificate lists. Only for a run whose artifacts were collected and uploaded (afterArtifacts
// came) and that was not cancelled. A failure here is the worker's: the run becomes
// exception/internal-error (the log is complete by then; the worker log says why).
import { CERTIFIED_LOG, CHAIN_OF_TRUST_ARTIFACT_NAMES, chainOfTrustArtifacts } from '../crypto/chain-of-trust.ts';
import { LOG_CONTENT_TYPE } from '../log/backing-log.ts';
import { NOTHING_TO_CLEAN, type Feature } from './feature.ts';

export interface ChainOfTrustOptions {
  /** Also publish public/chainOfTrust.json.asc (worker configuration chainOfTrust.openpgpSignature). */
  openpgpSignature: boolean;
}

export const chainOfTrust: Feature<ChainOfTrustOptions> = {
  name: 'chainOfTrust',
  defaultEnabled: false,
  plan: ({ worker }) => ({
    options: { openpgpSignature: worker.chainOfTrustOpenpgp === true },
    reservedArtifacts: [...CHAIN_OF_TRUST_ARTIFACT_NAMES],
  }),
  forTask: (ctx) => {
    let collected = false;
    return {
      async afterArtifacts() { collected = true; },
      async logComplete(log) {
        if (!collected || log.cancelled) return;
        if (!ctx.keys) throw new Error('this worker was started without its keys, so it cannot sign the chain of trust');
        const imageHash = ctx.imageId();
        if (!imageHash) throw new Error('chain of trust: the image the task ran is not known');
        const { worker } = ctx;
        try {
          // Straight from the complete log file (it may be large), as the backing log was.
          await ctx.publisher.uploadFile(log.path, { name: CERTIFIED_LOG, expires: ctx.plan.taskExpires, contentType: LOG_CONTENT_TYPE });
          const artifactHashes = Object.fromEntries(ctx.publisher.uploaded.map((u) => [u.name, u.sha256]));
          const signed = await chainOfTrustArtifacts({
            task: ctx.task as unknown as Record<string, unknown>, taskId: ctx.taskId, runId: ctx.runId,
            workerGroup: worker.workerGroup, workerId: worker.workerId, artifactHashes,
            environment: {
              publicIpAddress: worker.publicIp, privateIpAddress: worker.privateIp ?? worker.publicIp, imageHash,
              imageArtifactHash: ctx.imageArtifactHash(), instanceId: worker.instanceId, instanceType: worker.instanceType, region: worker.region,
            },
          }, { ed25519: ctx.keys.ed25519, ...(ctx.options.openpgpSignature ? { openpgp: await ctx.keys.openpgp() } : {}) });
          for (const artifact of signed) {
            await ctx.publisher.uploadData(artifact.body, { name: artifact.name, expires: ctx.plan.taskExpires, contentType: artifact.contentType, contentEncoding: 'identity' });
          }
        } catch (err) {
          ctx.log.error('could not publish the chain of trust', { taskId: ctx.taskId, runId: ctx.runId, error: (err as Error).message });
          throw new Error(`could not publish the chain of trust: ${(err as Error).message}`, { cause: err });
        }
      },
      cleanup: NOTHING_TO_CLEAN,
    };
  },
};
