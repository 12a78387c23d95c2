// What the task tests on per-task networks end their commands with, and why.
/**
 * Ends every task command: on this machine the last output a task on a per-task network writes
 * right before it exits is sometimes missing from the task log (seen with and without these
 * features' traffic, never once the task waits a moment before exiting; reported separately:
 * the log path, not the proxies). The assertions here are about the proxies.
 */
export const SETTLE_BEFORE_EXIT = 'sleep 1';
