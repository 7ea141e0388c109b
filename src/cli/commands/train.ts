import type { Command } from 'commander';
import { resolveConfig } from '../../core/config/load.js';
import { collect } from '../args.js';
import { printConfig, progressReporter } from '../report.js';

/** `switch-sim train`: train a Switch Transformer language model. */
export function register(program: Command): void {
  program
    .command('train')
    .description('train a Switch Transformer language model')
    .option('-c, --config <file>', 'YAML config file (layered over the built-in defaults)')
    .option('-s, --set <key=value>', 'override one config key, e.g. moe.capacity_factor=1.0 (repeatable)', collect, [])
    .option('-o, --out <dir>', 'run directory (default runs/<config>-<timestamp>; with --resume, the resumed run\'s own directory)')
    .option('-r, --resume <dir>', 'continue from a checkpoint directory or a run directory (its latest checkpoint), in that run directory')
    .action(async (o: { config?: string; set: string[]; out?: string; resume?: string }) => {
      const { loadCheckpoint } = await import('../../training/checkpoint.js');
      const { train } = await import('../../training/trainer.js');
      // on resume the checkpoint's config is the base; a config file and --set still apply on top
      const checkpoint = o.resume ? loadCheckpoint(o.resume) : undefined; // read and verified once: the trainer restores this
      const { config, name } = resolveConfig({ file: o.config, sets: o.set, base: checkpoint?.config as unknown as Record<string, unknown> | undefined });
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
          config, name, outDir: o.out, resume: o.resume, checkpoint, stop, log: progress.log, onStep: progress.onStep,
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
}
