// localLiveLog (on by default): the task log served live by the worker's live log server
// while the task runs, and `payload.log` (public/logs/live.log) a `reference` artifact to it
// from before the image is prepared. Without it the log is only uploaded at the end; either
// way the run uploads the backing log and turns the log name into a link to it.
import { publishLiveLog } from '../log/backing-log.ts';
import { NOTHING_TO_CLEAN, type Feature } from './feature.ts';

export interface LocalLiveLogOptions {
  liveLogName: string;
  backingLogName: string;
}

export const localLiveLog: Feature<LocalLiveLogOptions> = {
  name: 'localLiveLog',
  defaultEnabled: true,
  plan: (input) => ({
    options: { liveLogName: input.logName, backingLogName: input.backingLogName },
  }),
  forTask: (ctx) => ({
    async beforeCreate() {
      // Published in the background: the backing log replaces the reference only after it exists.
      const liveUrl = ctx.liveLogs.publish(ctx.taskLog);
      const names = { live: ctx.options.liveLogName, backing: ctx.options.backingLogName };
      ctx.beforeLogUpload(publishLiveLog(ctx.publisher, liveUrl, ctx.plan.taskExpires, names).then(
        () => ctx.mark('liveLogPublished'),
        (err: Error) => ctx.log.warn('could not publish the live log artifact', { taskId: ctx.taskId, runId: ctx.runId, error: err.message })));
    },
    cleanup: NOTHING_TO_CLEAN,
  }),
};
