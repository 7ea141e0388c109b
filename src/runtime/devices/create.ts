import type { Config } from '../../core/config/defaults.js';
import type { LayerBuffers } from '../../core/comm/buffers.js';
import type { ExpertDevice } from './device.js';
import { LocalDevice } from './local-device.js';

/** Starts `parallel.devices` devices with the configured transport. */
export async function createDevices(config: Config, switchBlocks: number[],
  buffers: LayerBuffers[]): Promise<ExpertDevice[]> {
  const D = config.parallel.devices;
  if (config.parallel.transport === 'local') {
    return Array.from({ length: D }, (_, i) => new LocalDevice(config, i, switchBlocks, buffers));
  }
  const { startThreadDevices } = await import('./thread-device.js');
  return startThreadDevices(config, switchBlocks, buffers);
}
