// A sidecar feature (payload.features.<name>, scope docker-worker:feature:<name>): the
// operator's container (sidecar-setting.ts) started beside the task on the run's own network
// (task-network.ts), reachable from the task under its alias, ready (its probe answered)
// before the task's image is even prepared, and removed with the run. balrogVPNProxy and
// balrogStageVPNProxy are two of these (registry.ts); the worker adds one for every other
// name in its `sidecars` setting.
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError } from '../docker/engine-error.ts';
import type { Feature, FeatureRunContext } from './feature.ts';
import { sidecarScope, sidecarSetting, type ReadinessProbe, type SidecarSetting } from './sidecar-setting.ts';
import { acquireTaskNetwork, onTaskNetwork, type TaskNetwork, type TaskNetworkLease } from './task-network.ts';

export interface SidecarOptions {
  /** The sidecar's name (the feature's); its setting is read from the worker at run time (its env may hold secrets). */
  sidecar: string;
}

const PROBE_TIMEOUT_MS = 1000;

export function sidecarFeature(name: string, configured?: Partial<SidecarSetting>): Feature<SidecarOptions> {
  return {
    name,
    defaultEnabled: false,
    requiredScope: sidecarScope(name, configured),
    plan: ({ taskId, runId, worker, workerPool }) => {
      if (!sidecarSetting(name, worker.sidecars?.[name])) {
        return {
          options: { sidecar: name },
          refusals: [`payload.features.${name} is not available on worker pool ${workerPool}: it has no image for it (worker configuration sidecars.${name}.image); run the task on a pool that provides it, or remove it`],
        };
      }
      return { options: { sidecar: name }, container: onTaskNetwork(taskId, runId) };
    },
    forTask: (ctx) => {
      let lease: TaskNetworkLease | undefined;
      let containerId: string | undefined;
      const ids = { taskId: ctx.taskId, runId: ctx.runId, feature: name };
      return {
        async beforeCreate() {
          const setting = sidecarSetting(name, ctx.worker.sidecars?.[name]);
          if (!setting) return { refusal: `payload.features.${name} is not available: this worker has no image for it (worker configuration sidecars.${name}.image)` };
          const fail = (what: string, err?: unknown) => new Error(`The ${name} feature ${what}; check the worker configuration sidecars.${name} (image ${setting.image}).`, { cause: err });
          if (!await ctx.engine.imageExists(setting.image)) throw fail(`could not start its sidecar: the image ${setting.image} is not on this host (sidecar images are not pulled: load it on the host)`);
          try {
            lease = await acquireTaskNetwork(ctx);
          } catch (err) {
            throw fail(`could not create the task's network (${(err as Error).message})`, err);
          }
          try {
            containerId = await createSidecar(ctx, name, setting, lease.network);
            await ctx.engine.startContainer(containerId);
          } catch (err) {
            throw fail(`could not start its sidecar (${err instanceof EngineError ? err.detail : (err as Error).message})`, err);
          }
          if (setting.readiness) {
            const problem = await waitUntilReady(ctx, containerId, lease.network, setting.readiness);
            if (problem) throw fail(`sidecar did not become ready: ${problem}`);
          }
          ctx.mark(`${name}Ready`);
        },
        async cleanup() {
          if (containerId) {
            await ctx.engine.removeContainer(containerId).catch((err: Error) =>
              ctx.log.error('could not remove a sidecar container (the startup sweep removes it later)', { ...ids, containerId, error: err.message }));
          }
          await lease?.release();
        },
      };
    },
  };
}

async function createSidecar(ctx: FeatureRunContext, name: string, setting: SidecarSetting, network: TaskNetwork): Promise<string> {
  return ctx.engine.createContainer({
    Image: setting.image,
    ...(setting.command?.length ? { Cmd: [...setting.command] } : {}),
    Env: Object.entries(setting.env ?? {}).map(([k, v]) => `${k}=${v}`),
    HostConfig: {
      NetworkMode: network.name,
      CapAdd: [...(setting.capabilities ?? [])],
      Devices: (setting.devices ?? []).map((path) => ({ PathOnHost: path, PathInContainer: path, CgroupPermissions: 'rwm' })),
    },
    NetworkingConfig: { EndpointsConfig: { [network.name]: { Aliases: [setting.alias ?? name] } } },
  }, { workerId: ctx.worker.workerId, taskId: ctx.taskId, runId: ctx.runId, extra: { 'taskcluster.feature': name } });
}

/** Probes the sidecar from the host until it answers as expected; the problem, or undefined when ready. */
async function waitUntilReady(ctx: FeatureRunContext, containerId: string, network: TaskNetwork, probe: ReadinessProbe): Promise<string | undefined> {
  const tries = probe.tries ?? 15;
  const intervalMs = probe.intervalMs ?? 1000;
  const expected = probe.status === undefined ? 'an answer below 500' : `status ${probe.status}`;
  let last = 'no answer';
  for (let attempt = 1; attempt <= tries; attempt++) {
    if (ctx.signal.aborted) return 'the run was interrupted';
    const info = await ctx.engine.inspectContainer(containerId);
    if (!info.State.Running) return `it stopped (exit code ${info.State.ExitCode}) before answering`;
    const address = info.NetworkSettings.Networks[network.name]?.IPAddress;
    if (address) {
      try {
        const res = await fetch(`http://${address}:${probe.port}${probe.path ?? '/'}`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS), redirect: 'manual' });
        await res.body?.cancel();
        if (probe.status === undefined ? res.status < 500 : res.status === probe.status) return undefined;
        last = `status ${res.status}`;
      } catch (err) {
        last = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
      }
    }
    if (attempt < tries) await sleep(intervalMs);
  }
  return `port ${probe.port} did not answer with ${expected} after ${tries} tries ${intervalMs / 1000} s apart (last: ${last})`;
}
