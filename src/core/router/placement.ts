import type { Config } from '../config/defaults.js';

/**
 * Expert parallelism's placement, in both layouts: device d owns experts [d·E/D, (d+1)·E/D) of every
 * Switch layer (their weights, gradients and optimizer state).
 */
export function expertsOf(config: Config, device: number): number[] {
  const per = config.moe.n_experts / config.parallel.devices;
  return Array.from({ length: per }, (_, i) => device * per + i);
}
