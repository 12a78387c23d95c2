// Part of stage 3: the devices a plan attaches must exist on this host before the container
// is created. Docker would otherwise fail the create ("Failure to properly start ...", the
// task failed) or, for a bind such as hostSharedMemory, silently create an empty directory.
// A device the worker is configured to provide but does not have is something the task owner
// cannot fix by retrying here: the run is refused (exception/malformed-payload) with one
// sentence naming the device and its host path.
import { stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import type { PlannedDevice } from './types.ts';

/** The sentences for every planned device this host cannot provide (empty: all present). */
export async function missingDevices(devices: readonly PlannedDevice[], workerPool: string): Promise<string[]> {
  const problems: string[] = [];
  for (const device of devices) {
    let info: Stats | undefined;
    try { info = await stat(device.hostPath); } catch { info = undefined; }
    const field = `payload.capabilities.devices.${device.name}`;
    const where = `worker pool ${workerPool} is configured to provide the ${device.name} device at ${device.hostPath}`;
    if (!info) {
      problems.push(`${field} is true and ${where}, but this host has nothing at ${device.hostPath}; run the task on a host that has the device, or remove it.`);
    } else if (device.mount === 'bind' && !info.isDirectory()) {
      problems.push(`${field} is true and ${where}, but ${device.hostPath} is not a directory on this host; run the task on a host that has the device, or remove it.`);
    } else if (device.mount === 'device' && !(info.isCharacterDevice() || info.isBlockDevice() || info.isDirectory())) {
      problems.push(`${field} is true and ${where}, but ${device.hostPath} is not a device on this host; run the task on a host that has the device, or remove it.`);
    }
  }
  return problems;
}
