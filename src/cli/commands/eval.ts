import { Option, type Command } from 'commander';
import { collect, number } from '../args.js';
import { formatEval } from '../report.js';

/** `switch-sim eval`: score a checkpoint. */
export function register(program: Command): void {
  program
    .command('eval')
    .description('score a checkpoint: cross-entropy, drops, load imbalance and router entropy per Switch layer')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory or run directory (its latest checkpoint)')
    .option('-s, --set <key=value>',
      'override a key of the checkpoint\'s config, e.g. moe.eval_capacity_factor=1.0 (repeatable)', collect, [])
    .option('--batches <n>', 'batches to score (default: train.eval_batches)', number('--batches', 1, true))
    .addOption(new Option('--split <split>', 'which part of the corpus').choices(['val', 'train']).default('val'))
    .option('--json', 'print one JSON line instead of a table')
    .action(async (o: { checkpoint: string; set: string[]; batches?: number; split: 'val' | 'train';
      json?: boolean }) => {
      const { evaluateCheckpoint } = await import('../../training/evaluate.js');
      const r = await evaluateCheckpoint({ checkpoint: o.checkpoint, sets: o.set, batches: o.batches, split: o.split });
      process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : formatEval(r));
    });
}
