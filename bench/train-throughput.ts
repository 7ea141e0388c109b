/**
 * Tokens/s of configs/tiny-shakespeare.yaml (d_model 128, 6 layers, 4 experts, batch 32×64), or of --config FILE.
 *   npx tsx bench/train-throughput.ts [--data PATH] [--config FILE] [--steps N] [--transport local|threads] [--devices D]
 * The first 2 steps are warm-up and not counted.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { train } from '../src/train/trainer.js';
import { basename } from 'node:path';
import { arg, benchConfig, configFile } from './common.js';

const steps = arg('steps', 20);
const transportIdx = process.argv.indexOf('--transport');
const transport = transportIdx >= 0 ? process.argv[transportIdx + 1]! : 'local';
const devices = arg('devices', 2);
const config = benchConfig(steps, `parallel.transport=${transport}`, `parallel.devices=${devices}`);
const times: number[] = [];
let last = performance.now();
await train({
  config, name: 'bench', outDir: mkdtempSync(join(tmpdir(), 'switch-sim-bench-')),
  onStep: () => {
    const now = performance.now();
    times.push(now - last);
    last = now;
  },
});
const counted = times.slice(2);
const ms = counted.reduce((a, b) => a + b, 0) / counted.length;
const tokens = config.data.batch_size * config.data.seq_len;
console.log(`${basename(configFile(), '.yaml')} transport=${transport} devices=${devices}: ${ms.toFixed(0)} ms/step, ${(tokens / (ms / 1000)).toFixed(0)} tokens/s over ${counted.length} steps`);
