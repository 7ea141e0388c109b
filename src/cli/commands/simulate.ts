import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../core/config/errors.js';
import { resolveConfig } from '../../core/config/load.js';
import { directoryPathProblem } from '../../core/util/fs.js';
import { timestampedRunDir } from '../../core/util/run-name.js';
import { COLLECTIVES, type CollectiveName } from '../../sim/collectives/measure.js';
import { collect, number } from '../args.js';

interface Options {
  cluster?: string;
  run?: string;
  config?: string;
  set: string[];
  megatronArgs?: string;
  emit?: string;
  vary?: string;
  out?: string;
  dispatch?: string;
  collective?: string;
  bytes?: number;
  gpus?: number;
  calibrate?: boolean;
  json?: boolean;
  search?: boolean;
  top?: number;
  space: string[];
  html?: string;
  threads?: number;
}

/** `switch-sim simulate`: project a run (or a config) onto a GPU cluster, one collective on it, or calibrate this machine's model. */
export function register(program: Command): void {
  program
    .command('simulate')
    .description(
      'project a recorded run (or a config) onto a GPU cluster under a parallel plan: step time, tokens/s, ' +
        'model TFLOP/s and MFU, memory, every collective; or one collective as nccl-tests reports it',
    )
    .option('--cluster <file>', 'cluster file (configs/clusters/*.yaml)')
    .option('--run <dir>', 'a run directory: replays what it routed, step by step')
    .option('-c, --config <file>', 'a config instead of a run: uniform routing')
    .option('-s, --set <key=value>', 'override one config key, plan.* included (repeatable)', collect, [])
    .option('--megatron-args <flags>', 'a Megatron-LM command line (quoted): its plan, batches and model shape, after --config and before --set')
    .option('--emit <format>', 'print the plan instead of projecting it: megatron (one line of Megatron-LM flags)')
    .option('--vary <key=v1,v2,...>', 'a what-if table over a config key (plan.tp, moe.capacity_factor, ...) or cluster.<key>')
    .option('--dispatch <mode>', 'shorthand for --set plan.dispatch=MODE: dropless (rows as kept) or padded (E×C slots)')
    .option('--collective <name>', `one collective alone: ${COLLECTIVES.join('|')}`)
    .option('--bytes <n>', 'with --collective: bytes per rank (nccl-tests\' size)', number('--bytes', 1))
    .option('--gpus <n>', 'with --collective: on the first N GPUs of the cluster (default all)', number('--gpus', 2, true))
    .option('-o, --out <dir>', 'output directory (default runs/simulate-<cluster>-<timestamp>)')
    .option('--calibrate', 'fit configs/clusters/this-machine.yaml here and predict held-out thread runs')
    .option('--json', 'the last line of stdout is the result as JSON')
    .option('--search', 'every plan Megatron-Core accepts for the model on the cluster, fastest first (--set and --megatron-args pin what they name)')
    .option('--top <n>', 'with --search: how many plans to print and list in --json (0: all that fit; default 10)', number('--top', 0, true))
    .option('--space <key=v1,v2,...>', 'with --search: narrow a searched plan key to these values (repeatable)', collect, [])
    .option('--html <file>', 'with --search: where to write search.html (default the output directory)')
    .option('--threads <n>', 'with --search: threads that project (default the cores, at most 8)', number('--threads', 1, true))
    .action(async (o: Options) => {
      const { loadCluster } = await import('../../sim/cluster.js');
      // output paths are checked before any work: a bad one is bad input, not a failure after a long search
      const outProblem = o.out === undefined ? undefined : directoryPathProblem(o.out);
      if (outProblem) throw new ConfigError(`--out must be a directory path (got ${JSON.stringify(o.out)}, which ${outProblem})`);
      if (o.html !== undefined) {
        const inDir = directoryPathProblem(dirname(o.html));
        const problem = o.html === '' || (existsSync(o.html) && statSync(o.html).isDirectory()) ? 'is not a file path'
          : inDir && `has a directory that ${inDir}`;
        if (problem) throw new ConfigError(`--html must be a file path in a directory (got ${JSON.stringify(o.html)}, which ${problem})`);
      }
      if (o.calibrate) {
        const { assertCalibrated, calibrate, calibrationTable } = await import('../../apps/calibrate/calibrate.js');
        const r = await calibrate({ log: (l) => console.log(l), out: o.out });
        process.stdout.write(calibrationTable(r));
        if (o.json) console.log(JSON.stringify({ cases: r.cases, max_error: r.max_error }));
        assertCalibrated(r); // exit 1 when a case could not run
        return;
      }
      if (!o.cluster) throw new ConfigError('--cluster is required (a file such as configs/clusters/8xh100.yaml) (got nothing)');
      const cluster = loadCluster(o.cluster);
      if (o.collective !== undefined) {
        if (!(COLLECTIVES as readonly string[]).includes(o.collective)) {
          throw new ConfigError(
            `--collective must be one of ${COLLECTIVES.join('|')} (got ${JSON.stringify(o.collective)})`,
          );
        }
        if (o.bytes === undefined) throw new ConfigError('--bytes is required with --collective: bytes per rank, as nccl-tests\' size (got nothing)');
        const { collectiveReport } = await import('../../sim/collectives/measure.js');
        const r = collectiveReport(cluster, o.collective as CollectiveName, o.bytes, o.gpus);
        console.log(
          `${cluster.name}: ${r.collective} of ${r.bytes} bytes per rank on ${r.gpus} GPUs ` +
            `(${r.nodes} node${r.nodes > 1 ? 's' : ''}): ${r.time_us.toFixed(1)} us, ` +
            `algbw ${r.algbw_gbps.toFixed(2)} GB/s, busbw ${r.busbw_gbps.toFixed(2)} GB/s`,
        );
        if (o.json) console.log(JSON.stringify(r));
        return;
      }
      if (!!o.run === !!o.config) {
        throw new ConfigError(
          'give exactly one of --run DIR, --config FILE and --collective NAME ' +
            `(got ${o.run ? 'both --run and --config' : 'none'})`,
        );
      }
      if (o.dispatch !== undefined && o.dispatch !== 'dropless' && o.dispatch !== 'padded') {
        throw new ConfigError(`--dispatch must be one of dropless|padded (got ${JSON.stringify(o.dispatch)})`);
      }
      if (o.emit !== undefined && o.emit !== 'megatron') throw new ConfigError(`--emit must be megatron (got ${JSON.stringify(o.emit)})`);
      const { measuredBreakdown } = await import('../../sim/measured.js');
      const { project } = await import('../../sim/project.js');
      const { projectionPage, projectionTrace, summaryLines, varyTable } = await import('../../sim/report.js');
      const { parseVary, vary } = await import('../../sim/vary.js');
      const { checkReplay } = await import('../../sim/replay.js');
      const { runWorkload, uniformWorkload } = await import('../../sim/workload.js');
      const sets = [...o.set, ...(o.dispatch ? [`plan.dispatch=${o.dispatch}`] : [])];
      const megatron = o.megatronArgs;
      const resolved = o.run ? undefined : resolveConfig({ file: o.config, megatron, sets });
      if (resolved?.ignored?.length) {
        process.stderr.write(
          `warning: --megatron-args ignores ${resolved.ignored.join(' ')}: they change nothing switch-sim models\n`,
        );
      }
      let w = o.run ? runWorkload(o.run) : uniformWorkload(resolved!.config);
      if (o.run && (sets.length > 0 || megatron !== undefined)) {
        const config = resolveConfig({ base: w.config as unknown as Record<string, unknown>, megatron, sets }).config;
        checkReplay(w.config, config, '--set');
        w = { ...w, config };
      }
      for (const warning of w.warnings ?? []) process.stderr.write(`warning: ${warning}\n`);
      const { clusterFor } = await import('../../sim/machine.js');
      const on = clusterFor(cluster, w.config); // this machine: the run's own device threads
      if (!o.search) (await import('./simulate-search.js')).refuseSearchFlags(o);
      if (o.search) {
        const { runSearch } = await import('./simulate-search.js');
        const out = () => {
          const d = o.out ?? timestampedRunDir(`simulate-${cluster.name}`);
          mkdirSync(d, { recursive: true });
          return d;
        };
        await runSearch({ ...o, megatronArgs: megatron }, on.cluster, w, out);
        return;
      }
      if (o.emit === 'megatron') {
        const { megatronLine } = await import('../../core/config/megatron-emit.js');
        const { resolveLayout } = await import('../../sim/layout.js');
        const L = resolveLayout(w.config, on.cluster, w.vocabSize); // plan.ep and plan.micro_batch 0 as the cluster resolves them
        console.log(megatronLine(w.config, { ep: L.ep, micro_batch: L.microBatch }));
        return;
      }
      // plan.redundant_experts: EPLB's copies placed by the recorded loads, and a note of what they change
      const copies = w.config.plan.redundant_experts > 0
        ? (await import('../../sim/replicas.js')).replicaProjection(on.cluster, w) : undefined;
      const p = { ...(copies?.projection ?? project(on.cluster, w)), notes: copies ? [...(on.notes ?? []), ...copies.notes] : on.notes };
      const varied = o.vary ? (() => {
        const { key, values } = parseVary(o.vary!);
        return { key, rows: vary(cluster, w, key, values) };
      })() : undefined;
      const dir = o.out ?? timestampedRunDir(`simulate-${cluster.name}`);
      mkdirSync(dir, { recursive: true });
      const { detail, ...json } = p;
      void detail;
      writeFileSync(join(dir, 'projection.json'), `${JSON.stringify({ ...json, ...(varied ? { vary: varied } : {}) }, null, 1)}\n`);
      writeFileSync(join(dir, 'trace.json'), JSON.stringify(projectionTrace(p)));
      writeFileSync(join(dir, 'projection.html'), projectionPage(p, o.run ? measuredBreakdown(o.run) : undefined, varied));
      for (const line of summaryLines(p)) console.log(line);
      if (varied) process.stdout.write(varyTable(varied.key, varied.rows));
      console.log(`wrote ${dir}/projection.json, ${dir}/trace.json (open in https://ui.perfetto.dev), ${dir}/projection.html`);
      if (o.json) {
        console.log(JSON.stringify({
          step_ms: p.step_ms, tokens_per_s: p.tokens_per_s, tokens_per_s_per_gpu: p.tokens_per_s_per_gpu,
          model_tflops_per_gpu: p.model_tflops_per_gpu, mfu: p.mfu,
          bubble_fraction: p.bubble_fraction, memory_gb_per_gpu: p.memory_gb_per_gpu, fits: p.fits, breakdown_ms: p.breakdown_ms, layers: p.layers,
        }));
      }
    });
}
