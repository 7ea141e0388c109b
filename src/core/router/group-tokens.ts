import type { Config } from '../config/defaults.js';

/**
 * Tokens per routing group: the tokens whose choices share each expert's capacity. Training routes a
 * step's batch as one group per device, each device's share of data.batch_size sequences of
 * data.seq_len tokens; micro-batches split whole groups, never a group's tokens (the engine's
 * micro-batches, an spmd replica's shard). The layer buffers, the simulator's replays and its check of
 * what a replay may change all read it here.
 */
export function tokensPerGroup(config: Pick<Config, 'data' | 'parallel'>): number {
  return (config.data.batch_size * config.data.seq_len) / config.parallel.devices;
}
