import type { Command } from 'commander';
import { ConfigError } from '../../core/config/errors.js';
import { collect, number } from '../args.js';

/** `switch-sim inspect`: which tokens go where. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('a page of a text coloured by the expert each character was routed to, per Switch ' +
      'layer, with what was dropped')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory or run directory')
    .option('--text <text>', 'route this text (default: a validation batch)')
    .option('--batch <n>', 'which validation batch', number('--batch', 0, true))
    .option('-s, --set <key=value>',
      'override a key of the checkpoint\'s config, e.g. moe.eval_capacity_factor=1.0 (repeatable)', collect, [])
    .option('-o, --out <file>', 'page to write', 'inspect.html')
    .action(async (o: { checkpoint: string; text?: string; batch?: number; set: string[]; out: string }) => {
      const { inspect } = await import('../../apps/inspect/inspect.js');
      if (o.text !== undefined && o.batch !== undefined)
        throw new ConfigError('--text and --batch are alternatives: give one');
      const r = await inspect({ checkpoint: o.checkpoint, text: o.text, batch: o.batch, sets: o.set, out: o.out });
      console.log(`wrote ${r.file}: ${r.tokens} characters, ${r.dropped} routings dropped`);
    });
}
