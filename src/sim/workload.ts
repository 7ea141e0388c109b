import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../core/config/defaults.js';
import { ConfigError } from '../core/config/errors.js';
import { resolveConfig } from '../core/config/load.js';
import { switchBlocks } from '../core/model/stages.js';
import { tokensPerGroup } from '../core/router/group-tokens.js';
import { missingAs, readJson } from '../core/util/fs.js';

/** One Switch layer in one step, as routed: token-choices per (routing group, expert), before capacity. */
export interface LayerLoad {
  /** [G][E] token-choices each group of the run sent each expert before dropping */
  routed: number[][];
  /** top-k: the mean number of expert groups a token's experts spanned in the run */
  groupsPerToken?: number;
  /** the expert groups that mean counts: the run's moe.route_groups, else its devices (as the trainer counts them) */
  expertGroups?: number;
}

export interface StepLoad {
  step: number;
  layers: LayerLoad[];
  /** a run's wall ms for the logging window ending at this step, per step (from its tokens/s) */
  ms?: number;
}

/** What `simulate` replays: the model, and what each step routed where. */
export interface Workload {
  config: Config;
  vocabSize: number;
  /** where the loads come from: a run's metrics.jsonl (skew and drops as recorded) or the config (uniform routing) */
  source: 'run' | 'config';
  steps: StepLoad[];
  /** the run's own measurement, when it is a run: mean ms per step over its logged steps */
  measured_ms_per_step?: number;
  /** what reading the run left out, one line each (a half-written last metrics line) */
  warnings?: string[];
}

/** Without a run: every group sends S·k/E token-choices to every expert, the mean load. */
export function uniformWorkload(config: Config, vocabSize = 65): Workload {
  const E = config.moe.n_experts;
  const per = (tokensPerGroup(config) * config.moe.top_k) / E;
  const layers = Array.from(
    { length: switchLayerCount(config) },
    () => ({ routed: Array.from({ length: config.parallel.devices }, () => new Array<number>(E).fill(per)) }),
  );
  return { config, vocabSize, source: 'config', steps: [{ step: 1, layers }] };
}

export const switchLayerCount = (c: Config) => switchBlocks(c).length;

/**
 * A run directory's workload: its config.yaml, and per logged step, per Switch layer, the first choices
 * each group routed to each expert (`group_expert_counts`), × k for top-k (exact for top-1; for top-2
 * an estimate: second choices are not recorded per group). The projection keeps min(routed, C).
 */
export function runWorkload(dir: string): Workload {
  const cfgFile = join(dir, 'config.yaml');
  const metricsFile = join(dir, 'metrics.jsonl');
  if (!existsSync(cfgFile) || !existsSync(metricsFile)) throw new ConfigError(`--run ${dir} must be a run directory ` +
    `with config.yaml and metrics.jsonl (got ${existsSync(dir) ? 'a folder without them' : 'no such folder'})`);
  const { config } = resolveConfig({ file: cfgFile });
  const k = config.moe.top_k;
  const expertGroups = config.moe.route_groups || config.parallel.devices;
  const steps: StepLoad[] = [];
  const stepMs: number[] = [];
  const lines = readFileSync(metricsFile, 'utf8').split('\n').filter((l) => l.trim());
  const warnings: string[] = [];
  for (const [i, line] of lines.entries()) {
    let r: { step: number; tokens_per_s?: number; layers?: { group_expert_counts: number[][]; groups_per_token?: number }[] };
    try {
      r = JSON.parse(line);
    } catch (e) {
      // a run still going, or one that crashed, can leave its last line half-written
      if (i === lines.length - 1) {
        warnings.push(`${metricsFile}: its last line is incomplete (a run still going, or one that stopped ` +
          `mid-write); left out`);
        continue;
      }
      throw new ConfigError(`--run ${dir}: metrics.jsonl line ${i + 1} must be JSON (got ` +
        `${JSON.stringify(line.slice(0, 40))}…: ${(e as Error).message})`);
    }
    if (!r.layers) continue;
    const ms = r.tokens_per_s ? ((config.data.batch_size * config.data.seq_len) / r.tokens_per_s) * 1000 : undefined;
    const span = (l: { groups_per_token?: number }) => (l.groups_per_token !== undefined ? {
      groupsPerToken: l.groups_per_token, expertGroups,
    } : {});
    steps.push({
      step: r.step,
      layers: r.layers.map((l) => ({ routed: l.group_expert_counts.map((row) => row.map((n) => n * k)), ...span(l) })),
      ms,
    });
    if (ms !== undefined) stepMs.push(ms);
  }
  if (steps.length === 0) throw new ConfigError(`--run ${dir}: metrics.jsonl has no step with per-layer routing (got ` +
    `none)`);
  return {
    config, vocabSize: runVocab(dir), source: 'run', steps,
    measured_ms_per_step: stepMs.length ? stepMs.reduce((a, b) => a + b, 0) / stepMs.length : undefined, warnings,
  };
}

/** The run's vocabulary size, from its newest checkpoint (character-level Tiny Shakespeare's 65 if it has none). */
function runVocab(dir: string): number {
  const ck = join(dir, 'checkpoints');
  if (!existsSync(ck)) return 65;
  for (const d of readdirSync(ck).sort().reverse()) {
    const vocab = readJson<{ vocab?: string }, undefined>(join(ck, d, 'checkpoint.json'), missingAs(undefined))?.vocab;
    if (typeof vocab === 'string' || Array.isArray(vocab)) return vocab.length;
  }
  return 65;
}

