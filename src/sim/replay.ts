import type { Config } from '../core/config/defaults.js';
import { ConfigError } from '../core/config/errors.js';
import { switchBlocks } from '../core/model/stages.js';
import { tokensPerGroup } from '../core/router/group-tokens.js';

/**
 * What a replay of a recorded run keeps from the run, each as the function that computes it: the
 * recorded counts are per Switch layer, per routing group of the run's size, per expert and choice.
 */
const KEPT: { rule: string; of: (c: Config) => unknown }[] = [
  { rule: 'which blocks are Switch layers (the routing was recorded per Switch layer)', of: (c) => switchBlocks(c) },
  { rule: 'the tokens per routing group (the recorded skew is that of groups of the run\'s size)', of: (c) => tokensPerGroup(c) },
  { rule: 'the shape of the recorded counts (per expert, k choices a token)', of: (c) => [c.moe.n_experts, c.moe.top_k] },
];

/** The config keys (dotted) that `of` reads from `config`: every leaf it touches, found by reading through a proxy. */
function keysRead(config: Config, of: (c: Config) => unknown): string[] {
  const read = new Set<string>();
  const watch = (node: object, path: string[]): object => new Proxy(node, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== 'string') return value;
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) return watch(value, [...path, prop]);
      read.add([...path, prop].join('.'));
      return value;
    },
  });
  of(watch(config, []) as Config);
  return [...read];
}

/**
 * The keys a replay may not change, each with the rule it would break: whatever the functions of KEPT
 * read, so that a key a future change makes them read is refused without a list to keep up.
 */
export function replayFixedKeys(run: Config): { key: string; rule: string }[] {
  const out = new Map<string, string>();
  for (const k of KEPT) for (const key of keysRead(run, k.of)) if (!out.has(key)) out.set(key, k.rule);
  return [...out].map(([key, rule]) => ({ key, rule }));
}

const at = (c: Config, key: string): unknown => key.split('.').reduce<unknown>((node, p) => (node as Record<string, unknown>)[p], c);

/** A replay's config (`how`: --set or --vary) may change no fixed key of the run's: else one line naming the key, the rule and both values. */
export function checkReplay(run: Config, replayed: Config, how: '--set' | '--vary'): void {
  for (const { key, rule } of replayFixedKeys(run)) {
    const [was, now] = [at(run, key), at(replayed, key)];
    if (JSON.stringify(was) !== JSON.stringify(now)) {
      throw new ConfigError(`${how} ${key} cannot replay a recorded run: it changes ${rule}, so it must stay the run's ${JSON.stringify(was)}; ` +
        `project a config (--config) for another (got ${JSON.stringify(now)})`);
    }
  }
}
