import type { Command } from 'commander';
import { number } from '../args.js';

/** `switch-sim generate`: sample text from a checkpoint. */
export function register(program: Command): void {
  program
    .command('generate')
    .description('sample text from a checkpoint')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory or run directory')
    .option('--prompt <text>', 'text to continue', '\n')
    .option('--tokens <n>', 'characters to generate', number('--tokens', 1, true), 200)
    .option('--temperature <t>', 'sampling temperature (0: greedy)', number('--temperature', 0), 0.8)
    .option('--top-k <k>', 'sample among the k likeliest (0: all)', number('--top-k', 0, true), 0)
    .option('--seed <s>', 'sampling seed', number('--seed', 0, true), 0)
    .action(async (o: { checkpoint: string; prompt: string; tokens: number; temperature: number; topK: number;
      seed: number }) => {
      const { sample } = await import('../../training/sample.js');
      const r = await sample({ checkpoint: o.checkpoint, prompt: o.prompt, tokens: o.tokens,
        temperature: o.temperature, topK: o.topK, seed: o.seed });
      if (r.skipped > 0)
        process.stderr.write(`note: ${r.skipped} prompt characters are not in the vocabulary and were left out\n`);
      process.stdout.write(`${r.text}\n`);
    });
}
