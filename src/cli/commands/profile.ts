import type { Command } from 'commander';
import { collect, number } from '../args.js';

/** `switch-sim profile`: profile a few training steps. */
export function register(program: Command): void {
  program
    .command('profile')
    .description('train a few steps with the profiler on: where a step\'s time goes, the dispatch overhead, a '
      + 'trace and a timeline page')
    .option('-c, --config <file>', 'YAML config file (layered over the built-in defaults)')
    .option('-s, --set <key=value>', 'override one config key (repeatable)', collect, [])
    .option('--steps <n>', 'profiled steps (as many unprofiled ones are interleaved, to measure the profiler\'s cost)',
      number('--steps', 1, true), 10)
    .option('--warmup <n>', 'unmeasured steps first', number('--warmup', 0, true), 3)
    .option('--checkpoint <dir>',
      'profile the trained model: continue from this checkpoint (or a run directory\'s latest), its config '
      + 'the base; the run is left as it is')
    .option('-o, --out <dir>', 'output directory (default runs/profile-<config>-<timestamp>)')
    .action(async (o: { config?: string; set: string[]; steps: number; warmup: number; checkpoint?: string;
      out?: string }) => {
      const { profileRun, profileSpmdRun } = await import('../../apps/profile/run.js');
      const { spmdTable } = await import('../../apps/profile/spmd.js');
      const { profileTable } = await import('../../apps/profile/table.js');
      const { configOverCheckpoint } = await import('../../training/checkpoint.js');
      const { config, name, checkpoint } = configOverCheckpoint({ checkpoint: o.checkpoint, file: o.config,
        sets: o.set });
      const opts = { config, name, steps: o.steps, warmup: o.warmup, checkpoint, outDir: o.out,
        log: (l: string) => console.log(l) };
      let r: { dir: string };
      if (config.parallel.layout === 'spmd') {
        const s = await profileSpmdRun(opts);
        process.stdout.write(spmdTable(s.report));
        r = s;
      } else {
        const c = await profileRun(opts);
        process.stdout.write(profileTable(c.report));
        r = c;
      }
      console.log(`wrote ${r.dir}/trace.json (open in https://ui.perfetto.dev or chrome://tracing), `
        + `${r.dir}/profile.json, ${r.dir}/profile.html`);
    });
}
