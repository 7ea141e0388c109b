import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../config/errors.js';
import { parseAssignment, resolveConfig } from '../../config/load.js';
import { collect } from '../args.js';

interface Options {
  cluster?: string;
  run?: string;
  config?: string;
  set: string[];
  vary?: string;
  out?: string;
  dispatch: string;
  calibrate?: boolean;
  json?: boolean;
}

/** `switch-sim simulate`: project a run (or a config) onto a GPU cluster, or calibrate this machine's model. */
export function register(program: Command): void {
  program
    .command('simulate')
    .description('project a recorded run (or a config) onto a GPU cluster: step time, tokens/s, MFU, dispatch overhead, per-layer comm and stragglers')
    .option('--cluster <file>', 'cluster file (configs/clusters/*.yaml)')
    .option('--run <dir>', 'a run directory: replays what it routed, step by step')
    .option('-c, --config <file>', 'a config instead of a run: uniform routing')
    .option('-s, --set <key=value>', 'override one config key (repeatable)', collect, [])
    .option('--vary <key=v1,v2,...>', 'a what-if table over a config key or cluster.<key>')
    .option('--dispatch <mode>', 'recorded (rows as routed) or padded (E×C slots, as most systems send)', 'recorded')
    .option('-o, --out <dir>', 'output directory (default runs/simulate-<cluster>-<timestamp>)')
    .option('--calibrate', 'fit configs/clusters/this-machine.yaml here and predict held-out thread runs')
    .option('--json', 'the last line of stdout is the result as JSON')
    .action(async (o: Options) => {
      const { loadCluster } = await import('../../sim/cluster.js');
      const { measuredBreakdown } = await import('../../sim/measured.js');
      const { project } = await import('../../sim/project.js');
      const { projectionPage, projectionTrace, summaryLines, varyTable } = await import('../../sim/report.js');
      const { checkReplayKey, parseVary, vary } = await import('../../sim/vary.js');
      const { runWorkload, uniformWorkload } = await import('../../sim/workload.js');
      const { assertCalibrated, calibrate, calibrationTable } = await import('../../sim/calibrate.js');
      if (o.calibrate) {
        const r = await calibrate({ log: (l) => console.log(l), out: o.out });
        process.stdout.write(calibrationTable(r));
        if (o.json) console.log(JSON.stringify({ cases: r.cases, max_error: r.max_error }));
        assertCalibrated(r); // exit 1 when a case could not run
        return;
      }
      if (!o.cluster) throw new ConfigError('--cluster is required (a file such as configs/clusters/8xh100.yaml) (got nothing)');
      if (o.dispatch !== 'recorded' && o.dispatch !== 'padded') throw new ConfigError(`--dispatch must be one of recorded|padded (got ${JSON.stringify(o.dispatch)})`);
      if (!!o.run === !!o.config) throw new ConfigError(`give exactly one of --run DIR and --config FILE (got ${o.run ? 'both' : 'neither'})`);
      const cluster = loadCluster(o.cluster);
      let w = o.run ? runWorkload(o.run) : uniformWorkload(resolveConfig({ file: o.config, sets: o.set }).config);
      if (o.run && o.set.length > 0) {
        for (const s of o.set) checkReplayKey(parseAssignment(s).key, '--set');
        w = { ...w, config: resolveConfig({ base: w.config as unknown as Record<string, unknown>, sets: o.set }).config };
      }
      for (const warning of w.warnings ?? []) process.stderr.write(`warning: ${warning}\n`);
      const dispatch = o.dispatch as 'recorded' | 'padded';
      const p = project(cluster, w, dispatch);
      const varied = o.vary ? (() => {
        const { key, values } = parseVary(o.vary!);
        return { key, rows: vary(cluster, w, key, values, dispatch) };
      })() : undefined;
      const dir = o.out ?? join('runs', `simulate-${cluster.name}-${new Date().toISOString().replace(/[:.]/g, '-').replace('Z', '')}`);
      mkdirSync(dir, { recursive: true });
      const { detail, ...json } = p;
      void detail;
      writeFileSync(join(dir, 'projection.json'), `${JSON.stringify({ ...json, ...(varied ? { vary: varied } : {}) }, null, 1)}\n`);
      writeFileSync(join(dir, 'trace.json'), JSON.stringify(projectionTrace(p)));
      writeFileSync(join(dir, 'projection.html'), projectionPage(p, o.run ? measuredBreakdown(o.run) : undefined, varied));
      for (const line of summaryLines(p)) console.log(line);
      if (varied) process.stdout.write(varyTable(varied.key, varied.rows));
      console.log(`wrote ${dir}/projection.json, ${dir}/trace.json (open in https://ui.perfetto.dev), ${dir}/projection.html`);
      if (o.json) console.log(JSON.stringify({ step_ms: p.step_ms, tokens_per_s: p.tokens_per_s, mfu: p.mfu, dispatch_overhead_fraction: p.dispatch_overhead_fraction }));
    });
}
