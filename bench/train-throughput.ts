/**
 * Tokens/s of configs/tiny-shakespeare.yaml (d_model 128, 6 layers, 4 experts, batch 32×64), or of --config FILE.
 *   npx tsx bench/train-throughput.ts [--data PATH] [--config FILE] [--steps N] [--transport local|threads] [--devices D]
 * The first 2 steps are warm-up and not counted.
 */
import { basename } from 'node:path';
import { arg, benchConfig, configFile, timedTrain } from './common.js';

const steps = arg('steps', 20);
const transportIdx = process.argv.indexOf('--transport');
const transport = transportIdx >= 0 ? process.argv[transportIdx + 1]! : 'local';
const devices = arg('devices', 2);
const config = benchConfig(steps, `parallel.transport=${transport}`, `parallel.devices=${devices}`);
const { msPerStep: ms } = await timedTrain(config);
const tokens = config.data.batch_size * config.data.seq_len;
console.log(`${basename(configFile(), '.yaml')} transport=${transport} devices=${devices}: ${ms.toFixed(0)} ms/step, ${(tokens / (ms / 1000)).toFixed(0)} tokens/s over ${steps - 2} steps`);
