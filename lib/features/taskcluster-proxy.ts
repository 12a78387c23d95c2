// taskclusterProxy (payload.features.taskclusterProxy, no scope needed): inside the task,
// http://taskcluster/ and $TASKCLUSTER_PROXY_URL reach a proxy that signs every request with
// the run's temporary credentials (the claim's: restricted to the task's scopes, new after
// every reclaim). A host-side server (taskcluster-proxy-server.ts), one per run, listening on
// port 80 of the gateway of the run's own network (task-network.ts); the task container finds
// it as `taskcluster` through /etc/hosts. It accepts connections from the run's network only,
// and closes with the run.
import { TaskclusterProxyServer } from './taskcluster-proxy-server.ts';
import { acquireTaskNetwork, onTaskNetwork, type TaskNetworkLease } from './task-network.ts';
import type { Feature } from './feature.ts';
import type { TaskCredentials } from '../task/types.ts';

export const TASKCLUSTER_PROXY_HOST = 'taskcluster';
export const TASKCLUSTER_PROXY_PORT = 80;

export const taskclusterProxy: Feature<Record<string, never>> = {
  name: 'taskclusterProxy',
  defaultEnabled: false,
  plan: ({ taskId, runId }) => ({
    options: {},
    container: { ...onTaskNetwork(taskId, runId), env: { TASKCLUSTER_PROXY_URL: `http://${TASKCLUSTER_PROXY_HOST}` } },
  }),
  forTask: (ctx) => {
    let lease: TaskNetworkLease | undefined;
    let server: TaskclusterProxyServer | undefined;
    let credentials: TaskCredentials = ctx.credentials();
    const ids = { taskId: ctx.taskId, runId: ctx.runId };
    return {
      async beforeCreate() {
        try {
          lease = await acquireTaskNetwork(ctx);
        } catch (err) {
          throw new Error(`The taskclusterProxy feature could not create the task's network: ${(err as Error).message}. Check that the Docker engine can create bridge networks (free address pools).`, { cause: err });
        }
        const { network } = lease;
        server = new TaskclusterProxyServer({
          rootUrl: ctx.worker.rootUrl, credentials: () => credentials, allows: network.allows, version: ctx.worker.workerVersion,
          onProblem: (message, details) => ctx.log.warn(message, { ...ids, ...details }),
        });
        try {
          await server.listen(network.gateway, TASKCLUSTER_PROXY_PORT);
        } catch (err) {
          throw new Error(`The taskclusterProxy feature could not listen on ${network.gateway}:${TASKCLUSTER_PROXY_PORT}: ${(err as Error).message}. Check what else listens on port ${TASKCLUSTER_PROXY_PORT} of this host.`, { cause: err });
        }
        ctx.mark('taskclusterProxyListening');
        return { container: { extraHosts: [`${TASKCLUSTER_PROXY_HOST}:${network.gateway}`] } };
      },
      async credentialsChanged(next) {
        credentials = next;
      },
      async cleanup() {
        await server?.close().catch((err: Error) => ctx.log.warn('could not close the taskclusterProxy', { ...ids, error: err.message }));
        await lease?.release();
      },
    };
  },
};
