// interactive (docker-worker's `interactive`, off by default, no scope, as there): while the task
// runs, and after its command ended, a person can open a shell in the task's container.
//  - The worker serves, per run, a shell server (lib/interactive/shell-server.ts) on a free port
//    with an unguessable secret in every path: the docker-exec-websocket-server protocol on
//    `<base>/socket` and a page (xterm.js, served by the worker) on `<base>/shell.html`. The
//    private artifact `private/docker-worker/shell.html` (docker-worker's name) redirects there.
//  - The container's entrypoint becomes a wrapper (lib/interactive/container-hold.ts) that runs
//    the command and then waits for the worker's release, so the container stays open: for
//    `interactive.minTimeSeconds` from the start, while a session is open, and
//    `interactive.expirySeconds` after the last one ended (lib/interactive/hold-policy.ts);
//    released in time for the container to exit before maxRunTime. The task's result is its
//    command's exit code.
// Everything is gone once the run ends: sessions and server in afterExit (and cleanup), the
// hold directory in cleanup after the container was removed.
import { readFile } from 'node:fs/promises';
import { ContainerHold, HOLD_DIR } from '../interactive/container-hold.ts';
import { latestRelease, releaseAt, type HoldPolicy } from '../interactive/hold-policy.ts';
import { ShellServer } from '../interactive/shell-server.ts';
import { longTimeout, type LongTimeout } from '../task/container-run.ts';
import type { Feature } from './feature.ts';

export const SHELL_ARTIFACT = 'private/docker-worker/shell.html';

export interface InteractiveOptions {
  artifactName: string;
}

export const interactive: Feature<InteractiveOptions> = {
  name: 'interactive',
  defaultEnabled: false,
  plan: () => ({
    options: { artifactName: SHELL_ARTIFACT },
    // The bind of the hold directory comes in beforeCreate (the directory is made then).
    container: { entrypoint: ['/bin/sh', `${HOLD_DIR}/hold.sh`] },
    reservedArtifacts: [SHELL_ARTIFACT],
  }),
  forTask: (ctx) => {
    const settings = ctx.worker.interactive;
    let hold: ContainerHold | undefined;
    let server: ShellServer | undefined;
    let tls: { cert: string; key: string } | undefined;
    let timer: LongTimeout | undefined;
    const sessions = { open: 0, lastEndedAt: undefined as number | undefined };
    const ids = { taskId: ctx.taskId, runId: ctx.runId };

    const stopServer = async () => {
      timer?.clear();
      const s = server;
      server = undefined;
      await s?.close();
    };

    return {
      async beforeCreate() {
        if (!settings) return { refusal: 'payload.features.interactive is not available on this worker (it has no interactive settings); remove it or set it to false' };
        if (settings.tls) {
          const [cert, key] = await Promise.all([readFile(settings.tls.certificatePath, 'utf8'), readFile(settings.tls.keyPath, 'utf8')]);
          tls = { cert, key };
        }
        hold = await ContainerHold.create(settings.tmpDir);
        return { container: { binds: [hold.bind] } };
      },

      async afterStart(containerId) {
        if (!settings || !hold) return;
        const theHold = hold;
        const policy: HoldPolicy = {
          startedAt: Date.now(), minTimeMs: settings.minTimeSeconds * 1000,
          expiryMs: settings.expirySeconds * 1000, maxRunTimeMs: ctx.plan.maxRunTimeSeconds * 1000,
        };
        const reschedule = () => {
          timer?.clear();
          const at = releaseAt(policy, sessions);
          if (Date.now() >= at) { theHold.release(); return; }
          if (sessions.open > 0) theHold.hold(); // a release the command has not seen yet is taken back
          timer = longTimeout(at - Date.now(), () => {
            ctx.log.info('interactive: releasing the container', ids);
            theHold.release();
          });
        };
        server = await ShellServer.start({
          engine: ctx.engine, containerId, host: settings.host, publicHost: settings.publicHost,
          ...(tls ? { tls } : {}), title: `Task ${ctx.taskId}, run ${ctx.runId}`,
          onSessions: (open) => {
            if (open < sessions.open) sessions.lastEndedAt = Date.now();
            sessions.open = open;
            ctx.log.info('interactive: sessions', { ...ids, open });
            reschedule();
          },
        });
        reschedule();
        await ctx.publisher.createReferenceArtifact(ctx.options.artifactName, server.pageUrl, ctx.plan.taskExpires, 'text/html; charset=utf-8');
        const minUntil = new Date(policy.startedAt + policy.minTimeMs);
        const latest = new Date(latestRelease(policy));
        ctx.taskLog.info(`interactive: open a shell in this container through the artifact ${ctx.options.artifactName} (or \`worker shell ${ctx.taskId}\`). `
          + `When the command ends the container stays open until ${(minUntil < latest ? minUntil : latest).toISOString()}, while a shell is open, and ${settings.expirySeconds} s after the last one closed, `
          + `but no later than ${latest.toISOString()} (maxRunTime); the task's result is the command's exit code.`);
      },

      async afterExit() {
        await stopServer();
      },

      async cleanup() {
        await stopServer().catch((err: Error) => ctx.log.error('could not close the shell server', { ...ids, error: err.message }));
        await hold?.remove().catch((err: Error) => ctx.log.error('could not remove the interactive hold directory', { ...ids, error: err.message }));
        hold = undefined;
      },
    };
  },
};
