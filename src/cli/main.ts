#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError } from '../config/errors.js';
import { writeFileSync } from 'node:fs';
import { benchDispatch, toCsv } from '../comm/dispatch-bench.js';
import { resolveConfig } from '../config/load.js';
import { BackendError } from '../backend/init.js';
import { DeviceError } from '../experts/errors.js';
import { CheckpointError, InterruptedError } from '../train/errors.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { sample } from '../train/sample.js';
import { train } from '../train/trainer.js';
import { evaluateCheckpoint } from '../train/evaluate.js';
import { profileRun } from '../profile/run.js';
import { profileTable } from '../profile/table.js';
import { formatEval, printConfig, progressReporter } from './report.js';

const collect = (v: string, acc: string[]) => [...acc, v];
const number = (name: string, min: number, integer = false) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    throw new InvalidArgumentError(`${name} must be ${integer ? 'an integer' : 'a number'} >= ${min} (got ${JSON.stringify(v)})`);
  }
  return n;
};

/** Maps an error to one line and an exit code: 2 bad input, 1 failure, 130 interrupted. */
export function exitCodeFor(e: unknown): { code: number; line: string } {
  if (e instanceof InterruptedError) return { code: 130, line: e.message };
  if (e instanceof ConfigError || e instanceof CheckpointError || e instanceof BackendError) {
    return { code: 2, line: e instanceof ConfigError ? e.message : `error: ${e.message}` };
  }
  if (e instanceof CommanderError) return { code: e.exitCode === 0 ? 0 : 2, line: '' };
  if (e instanceof DeviceError) return { code: 1, line: `error: ${e.message}` };
  return { code: 1, line: `error: ${(e as Error)?.message ?? String(e)}` };
}

export function buildProgram(): Command {
  const program = new Command('switch-sim')
    .description('Expert-parallel Switch Transformer training, simulated on one machine')
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(s.split('\n')[0]! + '\n') });

  program
    .command('train')
    .description('train a Switch Transformer language model')
    .option('-c, --config <file>', 'YAML config file (layered over the built-in defaults)')
    .option('-s, --set <key=value>', 'override one config key, e.g. moe.capacity_factor=1.0 (repeatable)', collect, [])
    .option('-o, --out <dir>', 'run directory (default runs/<config>-<timestamp>; with --resume, the resumed run\'s own directory)')
    .option('-r, --resume <dir>', 'continue from a checkpoint directory or a run directory (its latest checkpoint), in that run directory')
    .action(async (o: { config?: string; set: string[]; out?: string; resume?: string }) => {
      // on resume the checkpoint's config is the base; a config file and --set still apply on top
      const base = o.resume ? (loadCheckpoint(o.resume).config as unknown as Record<string, unknown>) : undefined;
      const { config, name } = resolveConfig({ file: o.config, sets: o.set, base });
      const stop = { requested: false };
      const onSigint = () => {
        if (stop.requested) process.exit(130);
        stop.requested = true;
        process.stderr.write('\nCtrl-C: finishing this step and saving a checkpoint (Ctrl-C again to quit now)\n');
      };
      process.on('SIGINT', onSigint);
      const progress = progressReporter(config.train.steps);
      try {
        const s = await train({
          config, name, outDir: o.out, resume: o.resume, stop, log: progress.log, onStep: progress.onStep,
          onReady: () => printConfig(config, name), // only once every input has been validated
        });
        progress.stop();
        console.log(`done: ${s.steps} steps in ${s.wall_s.toFixed(1)} s, ${s.tokens_per_s.toFixed(0)} tokens/s, train_ce ${s.train_ce.toFixed(4)}, val_ce ${s.val_ce?.toFixed(4) ?? '-'}`);
        console.log(`results: ${s.dir}/metrics.jsonl, ${s.dir}/summary.json, checkpoints in ${s.dir}/checkpoints`);
      } finally {
        progress.stop();
        process.off('SIGINT', onSigint);
      }
    });

  program
    .command('profile')
    .description('train a few steps with the profiler on: where a step\'s time goes, the dispatch overhead, a trace and a timeline page')
    .option('-c, --config <file>', 'YAML config file (layered over the built-in defaults)')
    .option('-s, --set <key=value>', 'override one config key (repeatable)', collect, [])
    .option('--steps <n>', 'profiled steps (as many unprofiled ones are interleaved, to measure the profiler\'s cost)', number('--steps', 1, true), 10)
    .option('--warmup <n>', 'unmeasured steps first', number('--warmup', 0, true), 3)
    .option('-o, --out <dir>', 'output directory (default runs/profile-<config>-<timestamp>)')
    .action(async (o: { config?: string; set: string[]; steps: number; warmup: number; out?: string }) => {
      const { config, name } = resolveConfig({ file: o.config, sets: o.set });
      const r = await profileRun({ config, name, steps: o.steps, warmup: o.warmup, outDir: o.out, log: (l) => console.log(l) });
      process.stdout.write(profileTable(r.report));
      console.log(`wrote ${r.dir}/trace.json (open in https://ui.perfetto.dev or chrome://tracing), ${r.dir}/profile.json, ${r.dir}/profile.html`);
    });

  const list = (name: string, parse: (v: string) => number | string) => (v: string) => v.split(',').map((x) => {
    const r = parse(x.trim());
    if (typeof r === 'number' && (!Number.isInteger(r) || r < 1)) throw new InvalidArgumentError(`${name} must be a comma-separated list of integers >= 1 (got ${JSON.stringify(v)})`);
    return r;
  });
  program
    .command('bench')
    .description('micro-benchmarks')
    .command('dispatch')
    .description('the all-to-all alone (pack, signal, devices copy their rows, reply, unpack) against an empty round trip and a memcpy of the same bytes')
    .option('--tokens <list>', 'tokens per call, comma-separated', list('--tokens', Number), [64, 256, 1024, 4096, 16384, 65536])
    .option('--d-model <list>', 'row widths', list('--d-model', Number), [128])
    .option('--devices <list>', 'device threads', list('--devices', Number), [2])
    .option('--experts <list>', 'experts', list('--experts', Number), [4])
    .addOption(new Option('--payload <list>', 'slot transport: shared, transfer, clone').argParser(list('--payload', String)).default(['shared', 'transfer', 'clone']))
    .option('--skew <list>', 'routing: uniform, zipf:S, one-hot:K', list('--skew', String), ['uniform', 'zipf:1.2'])
    .option('-o, --out <file>', 'also write the rows as CSV')
    .action(async (o: { tokens: number[]; dModel: number[]; devices: number[]; experts: number[]; payload: string[]; skew: string[]; out?: string }) => {
      for (const p of o.payload) if (!['shared', 'transfer', 'clone'].includes(p)) throw new InvalidArgumentError(`--payload must list shared, transfer or clone (got ${JSON.stringify(p)})`);
      const cases = o.devices.flatMap((devices) => o.experts.flatMap((experts) => o.dModel.flatMap((d) => o.payload.flatMap((payload) =>
        o.skew.flatMap((skew) => o.tokens.map((tokens) => ({ tokens, d_model: d, devices, experts, payload: payload as 'shared', skew })))))));
      for (const c of cases) {
        if (c.experts % c.devices !== 0) throw new ConfigError(`--experts must be divisible by --devices (got ${c.experts} experts, ${c.devices} devices)`);
        if (c.tokens % c.devices !== 0) throw new ConfigError(`--tokens must be divisible by --devices (got ${c.tokens} tokens, ${c.devices} devices)`);
      }
      console.log(`${'tokens'.padStart(7)} ${'d'.padStart(4)} ${'D'.padStart(2)} ${'E'.padStart(3)} ${'payload'.padEnd(8)} ${'skew'.padEnd(9)} ${'KiB'.padStart(8)} ` +
        `${'us_per_call'.padStart(11)} ${'GB/s'.padStart(6)} ${'round trip us'.padStart(13)} ${'memcpy us'.padStart(9)} ${'x (round trip + memcpy)'.padStart(23)}  pack / devices / unpack us`);
      const rows = await benchDispatch(cases, (r) => console.log(
        `${String(r.tokens).padStart(7)} ${String(r.d_model).padStart(4)} ${String(r.devices).padStart(2)} ${String(r.experts).padStart(3)} ${r.payload.padEnd(8)} ${r.skew.padEnd(9)} ` +
        `${(r.bytes / 1024).toFixed(0).padStart(8)} ${r.us_per_call.toFixed(1).padStart(11)} ${r.gb_per_s.toFixed(2).padStart(6)} ${r.round_trip_us.toFixed(1).padStart(13)} ` +
        `${r.memcpy_us.toFixed(1).padStart(9)} ${r.ratio_to_limit.toFixed(2).padStart(23)}  ${r.pack_us.toFixed(0)} / ${r.devices_us.toFixed(0)} / ${r.unpack_us.toFixed(0)}`));
      if (o.out) {
        writeFileSync(o.out, toCsv(rows));
        console.log(`wrote ${o.out}`);
      }
    });

  program
    .command('eval')
    .description('score a checkpoint: cross-entropy, drops, load imbalance and router entropy per Switch layer')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory or run directory (its latest checkpoint)')
    .option('-s, --set <key=value>', 'override a key of the checkpoint\'s config, e.g. moe.eval_capacity_factor=1.0 (repeatable)', collect, [])
    .option('--batches <n>', 'batches to score (default: train.eval_batches)', number('--batches', 1, true))
    .addOption(new Option('--split <split>', 'which part of the corpus').choices(['val', 'train']).default('val'))
    .option('--json', 'print one JSON line instead of a table')
    .action(async (o: { checkpoint: string; set: string[]; batches?: number; split: 'val' | 'train'; json?: boolean }) => {
      const r = await evaluateCheckpoint({ checkpoint: o.checkpoint, sets: o.set, batches: o.batches, split: o.split });
      process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : formatEval(r));
    });

  program
    .command('generate')
    .description('sample text from a checkpoint')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory or run directory')
    .option('--prompt <text>', 'text to continue', '\n')
    .option('--tokens <n>', 'characters to generate', number('--tokens', 1, true), 200)
    .option('--temperature <t>', 'sampling temperature (0: greedy)', number('--temperature', 0), 0.8)
    .option('--top-k <k>', 'sample among the k likeliest (0: all)', number('--top-k', 0, true), 0)
    .option('--seed <s>', 'sampling seed', number('--seed', 0, true), 0)
    .action(async (o: { checkpoint: string; prompt: string; tokens: number; temperature: number; topK: number; seed: number }) => {
      const r = await sample({ checkpoint: o.checkpoint, prompt: o.prompt, tokens: o.tokens, temperature: o.temperature, topK: o.topK, seed: o.seed });
      if (r.skipped > 0) process.stderr.write(`note: ${r.skipped} prompt characters are not in the vocabulary and were left out\n`);
      process.stdout.write(`${r.text}\n`);
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    const { code, line } = exitCodeFor(e);
    if (line) process.stderr.write(`${line}\n`);
    return code;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('cli/main.ts')) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
