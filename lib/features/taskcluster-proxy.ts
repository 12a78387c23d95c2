// taskclusterProxy (payload.features.taskclusterProxy, no scope needed): inside the task,
// http://taskcluster/ and $TASKCLUSTER_PROXY_URL reach a proxy that signs every request with
// the run's temporary credentials (the claim's: restricted to the task's scopes, new after
// every reclaim). It runs in the worker process (taskcluster-proxy-server.ts), served on the
// run's gateway server (gateway-server.ts: port 80 of the gateway of the run's own network,
// task-network.ts, accepting that network only); the task container finds it as `taskcluster`
// through /etc/hosts. It is gone when the run ends.
import { acquireProxyGateway, type GatewayLease } from './gateway-server.ts';
import { TaskclusterProxy } from './taskcluster-proxy-server.ts';
import { onTaskNetwork, type TaskNetworkLease } from './task-network.ts';
import type { Feature } from './feature.ts';
import type { TaskCredentials } from '../task/types.ts';

export const TASKCLUSTER_PROXY_HOST = 'taskcluster';

export const taskclusterProxy: Feature<Record<string, never>> = {
  name: 'taskclusterProxy',
  defaultEnabled: false,
  plan: ({ taskId, runId }) => ({
    options: {},
    container: { ...onTaskNetwork(taskId, runId), env: { TASKCLUSTER_PROXY_URL: `http://${TASKCLUSTER_PROXY_HOST}` } },
  }),
  forTask: (ctx) => {
    let network: TaskNetworkLease | undefined;
    let gateway: GatewayLease | undefined;
    let proxy: TaskclusterProxy | undefined;
    let credentials: TaskCredentials = ctx.credentials();
    return {
      async beforeCreate() {
        ({ network, gateway } = await acquireProxyGateway('taskclusterProxy', ctx));
        proxy = new TaskclusterProxy({ rootUrl: ctx.worker.rootUrl, credentials: () => credentials, version: ctx.worker.workerVersion });
        gateway.server.serve(TASKCLUSTER_PROXY_HOST, proxy.handle);
        ctx.mark('taskclusterProxyListening');
        return { container: { extraHosts: [`${TASKCLUSTER_PROXY_HOST}:${network.network.gateway}`] } };
      },
      async credentialsChanged(next) {
        credentials = next;
      },
      async cleanup() {
        proxy?.close();
        await gateway?.release();
        await network?.release();
      },
    };
  },
};
