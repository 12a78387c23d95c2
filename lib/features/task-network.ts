// The per-task bridge network of a run whose features need one (taskclusterProxy,
// relengAPIProxy, sidecars). The plan puts the task container on it by name (pure: the name is
// the run's); the first feature that needs it creates it in beforeCreate, through the engine
// adapter (labelled as the worker's and the run's, so the startup sweep finds a leftover), and
// the last feature that lets go removes it in cleanup, after the container and the sidecars
// are gone. Docker isolates one bridge network from another, so a task reaches neither
// another task's container nor its sidecars; what listens on the host at a network's gateway
// (the proxies) must check the source address itself (`allows`): another task's container can
// reach any host address.
import { BlockList, isIPv4 } from 'node:net';
import type { NetworkAddresses } from '../docker/engine.ts';
import type { ContainerAdditions, FeatureRunContext } from './feature.ts';
import { PerRunShared } from './per-run-shared.ts';
import { unreachableEngine } from '../docker/engine-error.ts';

export const TASK_NETWORK_LABEL = 'taskcluster.feature';

/** The run's network name (Docker names allow [A-Za-z0-9_.-]; slugids are made of those). */
export function taskNetworkName(taskId: string, runId: number): string {
  return `taskcluster-task-${taskId}-${runId}`;
}

/** What a feature's plan adds to put the task container on the run's network. */
export function onTaskNetwork(taskId: string, runId: number): ContainerAdditions {
  return { networkMode: taskNetworkName(taskId, runId) };
}

export interface TaskNetwork extends NetworkAddresses {
  name: string;
  id: string;
  /** True for addresses of this network's containers (the task's own and its sidecars), not its gateway (the host). */
  allows(address: string | undefined): boolean;
}

export interface TaskNetworkLease {
  network: TaskNetwork;
  /** Gives the network back (once); the last holder removes it. Never throws. */
  release(): Promise<void>;
}

/** One network per run, shared by its features. */
const networks = new PerRunShared<TaskNetwork>();

type NetworkContext = Pick<FeatureRunContext, 'taskId' | 'runId' | 'plan' | 'engine' | 'worker' | 'log'>;

/** The run's network, created by the first caller; each lease must be released. */
export async function acquireTaskNetwork(ctx: NetworkContext): Promise<TaskNetworkLease> {
  const lease = await networks.acquire(ctx.plan, () => createNetwork(ctx), (network) =>
    ctx.engine.removeNetwork(network.id).catch((err: Error) =>
      ctx.log.error('could not remove the task network (the startup sweep removes it later)', {
        taskId: ctx.taskId, runId: ctx.runId, network: network.name, error: err.message,
      })));
  return { network: lease.value, release: lease.release };
}

async function createNetwork(ctx: NetworkContext): Promise<TaskNetwork> {
  const name = taskNetworkName(ctx.taskId, ctx.runId);
  const id = await ctx.engine.createNetwork(name, {
    workerId: ctx.worker.workerId, taskId: ctx.taskId, runId: ctx.runId, extra: { [TASK_NETWORK_LABEL]: 'task-network' },
  }, { Driver: 'bridge', CheckDuplicate: true });
  try {
    const addresses = await ctx.engine.networkAddresses(id);
    return { name, id, ...addresses, allows: addressCheck(addresses) };
  } catch (err) {
    // A hung engine removes it once it answers again; the run does not wait for that.
    const removal = ctx.engine.removeNetwork(id).catch(() => undefined);
    if (!unreachableEngine(err)) await removal;
    throw err;
  }
}

/** Addresses inside `subnet` other than the gateway (IPv4, or IPv4-mapped IPv6). */
export function addressCheck({ subnet, gateway }: NetworkAddresses): (address: string | undefined) => boolean {
  const [base, prefix] = subnet.split('/');
  const inside = new BlockList();
  inside.addSubnet(base!, Number(prefix), 'ipv4');
  return (address) => {
    if (!address) return false;
    const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
    return isIPv4(v4) && v4 !== gateway && inside.check(v4, 'ipv4');
  };
}
