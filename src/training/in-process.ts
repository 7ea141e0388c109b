import type { Config } from '../core/config/defaults.js';
import { ConfigError } from '../core/config/errors.js';
import { resolveConfig } from '../core/config/load.js';

/**
 * What the config is for: scoring batches as the trainer evaluates them (`eval`, `inspect`), or sampling one
 * window at a time (`generate`).
 */
export type InProcessUse = 'score' | 'sample';

/**
 * The config that scores or samples a checkpoint in this process, whatever layout, transport or
 * backend trained it: the coordinator layout with in-process devices on the coordinator's backend,
 * no injected fault, one micro-batch. Scoring keeps the routing groups of training
 * (parallel.devices), so that its batches route as the trainer's evaluation did; sampling reads one
 * sequence, a single group. Then `sets` (the user's `--set`), and the whole validated like any config.
 * `eval`, `inspect` and `generate` all start here.
 */
export function inProcessConfig(trained: Config, sets: string[] = [], use: InProcessUse = 'score'): Config {
  const p = trained.parallel;
  const own = [
    'parallel.layout=coordinator', 'parallel.transport=local', `parallel.backend=${p.coordinator_backend}`,
    'parallel.fault.device=-1', 'parallel.microbatches=1',
    ...(use === 'sample' ? ['parallel.devices=1', 'data.batch_size=1'] : []),
  ];
  const { config } = resolveConfig({ base: trained as unknown as Record<string, unknown>, sets: [...own, ...sets] });
  if (config.parallel.layout !== 'coordinator')
    throw new ConfigError(`parallel.layout must be coordinator here: checkpoints are scored and sampled in this ` +
      `process (got ${JSON.stringify(config.parallel.layout)})`);
  return config;
}
