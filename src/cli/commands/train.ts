import type { Command } from 'commander';
import { collect } from '../args.js';
import { printConfig, progressReporter } from '../report.js';

/** `switch-sim train`: train a Switch Transformer language model. */
export function register(program: Command): void {
  program
    .command('train')
    .description('train a Switch Transformer language model')
    .option('-c, --config <file>', 'YAML config file (layered over the built-in defaults)')
    .option('-s, --set <key=value>', 'override one config key, e.g. moe.capacity_factor=1.0 (repeatable)', collect, [])
    .option('-o, --out <dir>', 'run directory (default runs/<config>-<timestamp>; with --resume, the '
      + 'resumed run\'s own directory)')
    .option('-r, --resume <dir>',
      'continue from a checkpoint directory or a run directory (its latest checkpoint), in that run directory')
    .option('-f, --force', 'delete the run already in the --out directory and start this one there '
      + '(without it, that is refused)')
    .action(async (o: { config?: string; set: string[]; out?: string; resume?: string; force?: boolean }) => {
      const { onCtrlC } = await import('../../core/util/interrupt.js');
      const { configOverCheckpoint } = await import('../../training/checkpoint.js');
      const { train } = await import('../../training/trainer.js');
      const { config, name, checkpoint } = configOverCheckpoint({ checkpoint: o.resume, file: o.config, sets: o.set });
      const stop = { requested: false };
      const offCtrlC = onCtrlC({ first: 'finishing this step and saving a checkpoint',
        onFirst: () => (stop.requested = true) });
      const progress = progressReporter(config.train.steps);
      try {
        const s = await train({
          config, name, outDir: o.out, force: o.force, resume: o.resume, checkpoint, stop, log: progress.log,
          onStep: progress.onStep,
          onReady: () => printConfig(config, name), // only once every input has been validated
        });
        progress.stop();
        if (s.alreadyComplete) return; // the trainer said so in one line
        const fixed = (x: number | null, digits: number) => x?.toFixed(digits) ?? '-';
        console.log(`done: ${s.steps} steps in ${fixed(s.wall_s, 1)} s, ${fixed(s.tokens_per_s, 0)} tokens/s, `
          + `train_ce ${fixed(s.train_ce, 4)}, val_ce ${fixed(s.val_ce, 4)}`);
        console.log(`results: ${s.dir}/metrics.jsonl, ${s.dir}/summary.json, checkpoints in ${s.dir}/checkpoints`);
      } finally {
        progress.stop();
        offCtrlC();
      }
    });
}
