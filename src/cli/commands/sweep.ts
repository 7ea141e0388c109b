import cliProgress from 'cli-progress';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../core/config/errors.js';
import { onCtrlC } from '../../core/util/interrupt.js';
import type { MetricColumn, ResultRow } from '../../apps/sweep/results.js';
import { InterruptedError } from '../../training/errors.js';
import { SweepFailedError } from '../../apps/sweep/errors.js';
import { collect, number, seedList } from '../args.js';

/** `switch-sim sweep FILE` and `switch-sim report DIR`: scaling experiments from config files. */
export function register(program: Command): void {
  program
    .command('sweep')
    .description('run every point of a sweep file (grid × runs × seeds) and write results and a report')
    .argument('<file>', 'sweep file (YAML: base, grid, runs, seeds, set, record)')
    .option(
      '-s, --set <key=value>',
      'set a config key for every point, after the file\'s set (repeatable), e.g. data.path=FILE', collect, [],
    )
    .option(
      '--seeds <list>',
      'run every point once per seed of this comma-separated list instead of the file\'s seeds, e.g. 1,2', seedList,
    )
    .option('-o, --out <dir>', 'sweep directory (default runs/sweep-<name>-<timestamp>)')
    .option('--resume', 'continue the sweep in --out: finished points are skipped, failed ones rerun '
      + '(with --queue: finished rows kept, the rest followed on the queue)')
    .option('--dry-run', 'list the points with their parameter counts and exit')
    .option(
      '--jobs <n>',
      'points at once, each a child process (default 1, which keeps speed measurements fair); not with --queue',
      number('--jobs', 1, true),
    )
    .option(
      '--profile-steps <n>', 'profiled steps per point when the sweep records profile',
      number('--profile-steps', 1, true), 3,
    )
    .option(
      '--queue <url>',
      'redis://HOST:PORT[/DB]: enqueue the points for `switch-sim worker`s anywhere, follow them and collect the ' +
        'results',
    )
    .option(
      '--attempts <n>', 'with --queue: tries per point before it is recorded as failed (default 2)',
      number('--attempts', 1, true),
    )
    .action(async (file: string, o: {
      set: string[]; seeds?: number[]; out?: string; resume?: boolean; dryRun?: boolean; jobs?: number; profileSteps: number; queue?: string; attempts?: number;
    }) => {
      // an option that would be silently ignored is refused: the workers run a queued sweep's points, at
      // their --concurrency
      if (o.queue && o.jobs !== undefined) {
        throw new ConfigError(`--jobs must be left out with --queue: the workers run the points, each worker's ` +
          `--concurrency at once (got --jobs ${o.jobs})`);
      }
      if (!o.queue && o.attempts !== undefined) {
        throw new ConfigError(`--attempts needs --queue: only a queued point is retried (got --attempts ` +
          `${o.attempts} without --queue)`);
      }
      const jobs = o.jobs ?? 1;
      const { loadCorpus } = await import('../../core/data/corpus.js');
      const { CharTokenizer } = await import('../../core/data/tokenizer.js');
      const { loadSweep } = await import('../../apps/sweep/file.js');
      const { describePoints, runSweep } = await import('../../apps/sweep/run.js');
      const { runRemoteSweep } = await import('../../apps/sweep/remote.js');
      const { signalPoints } = await import('../../apps/sweep/child.js');
      if (o.dryRun) {
        const sweep = loadSweep(file, o.set, o.seeds);
        const vocab = new Map<string, number>();
        for (const p of sweep.points) {
          const key = `${p.config.data.dataset}\n${p.config.data.path}`;
          if (!vocab.has(key)) vocab.set(
            key, CharTokenizer.fromText((await loadCorpus(p.config.data.dataset, p.config.data.path)).text).vocabSize,
          );
        }
        const lines = describePoints(sweep, (p) => vocab.get(`${p.config.data.dataset}\n${p.config.data.path}`)!);
        const seeds = new Set(sweep.points.map((p) => p.seed)).size;
        console.log(`sweep ${sweep.name}: ${sweep.points.length} runs, ${sweep.points.length / seeds} points × ` +
          `${seeds} seed${seeds === 1 ? '' : 's'} (swept: ${sweep.keys.join(', ') || 'nothing'}; records ` +
          `${sweep.record.profile ? 'train, profile' : 'train'})`);
        for (const l of lines) console.log(`  ${l}`);
        return;
      }
      if (o.resume && !o.out) throw new ConfigError('--resume needs --out DIR, the sweep directory to continue');
      if (jobs > 1) console.log(`note: --jobs ${jobs} runs points side by side on the same cores: their tokens/s and ` +
        `step_ms are not comparable with a --jobs 1 sweep`);
      const abort = new AbortController();
      const offCtrlC = onCtrlC({
        first: 'stopping the running points (they save a checkpoint) and keeping what is done',
        onFirst: () => abort.abort(),
        onSecond: () => signalPoints('SIGINT'), // the points quit at once
      });
      const bar = process.stderr.isTTY
        ? new cliProgress.SingleBar(
          {
            format: 'sweep |{bar}| {value}/{total} points | ETA {eta_formatted} | {last}', hideCursor: true,
            stream: process.stderr,
          },
          cliProgress.Presets.shades_classic,
        )
        : undefined;
      const line = (r: ResultRow, done: number, total: number) =>
        `${r.point}: ${r.status}` +
        `${r.status === 'ok' ? `, val_ce ${r.val_ce?.toFixed(4) ?? '-'}, ${r.tokens_per_s?.toFixed(0) ?? '-'} tokens/s` : `: ${r.error}`}` +
        `${r.projection_error ? `, not projected: ${r.projection_error}` : ''} (${r.wall_s.toFixed(1)} s) [${done}/${total}]`;
      try {
        let started = false;
        const onPoint = (row: ResultRow, done: number, total: number) => {
          if (bar) {
            if (!started) bar.start(total, done - 1, { last: '' });
            started = true;
            bar.update(done, { last: `${row.point} ${row.status}` });
            process.stderr.write(`\r\x1b[K${line(row, done, total)}\n`);
          } else console.log(line(row, done, total));
        };
        const r = o.queue
          ? await runRemoteSweep({
            file, sets: o.set, seeds: o.seeds, outDir: o.out, resume: o.resume, profileSteps: o.profileSteps,
            signal: abort.signal,
            queue: o.queue, attempts: o.attempts, onPoint,
            onProgress: (point, g) => (
              bar ? process.stderr.write('\r\x1b[K') : undefined,
              console.log(`  ${point} on ${g.worker ?? '?'}: step ${g.step}/${g.steps} loss ${g.loss} ` +
                `${g.tokens_per_s} tok/s`)
            ),
          })
          : await runSweep({
            file, sets: o.set, seeds: o.seeds, outDir: o.out, resume: o.resume, jobs, profileSteps: o.profileSteps,
            signal: abort.signal, onPoint,
          });
        bar?.stop();
        if (r.skipped > 0) console.log(`skipped ${r.skipped} finished points`);
        const report = join(r.dir, 'report.html');
        const failed = r.rows.filter((x) => x.status === 'failed').length;
        console.log(`results: ${r.dir}/results.jsonl, ${r.dir}/results.csv; report: ${report} ` +
          `(${r.rows.length - failed} ok, ${failed} failed)`);
        if (r.interrupted) throw new InterruptedError(`interrupted: kept ${r.rows.length} finished points; continue ` +
          `with --resume --out ${r.dir}`);
        if (failed > 0) throw new SweepFailedError(`${failed} of ${r.rows.length} points failed (their errors are in ` +
          `${r.dir}/results.csv); rerun them with --resume --out ${r.dir}`);
      } finally {
        bar?.stop();
        offCtrlC();
      }
    });

  program
    .command('report')
    .description('rebuild a sweep directory\'s report.html and charts/*.svg')
    .argument('<dir>', 'sweep directory')
    .option(
      '--markdown [columns]',
      'print the per-point table as markdown instead (only these comma-separated measurements when given, e.g. ' +
        'val_ce,drop_fraction)',
    )
    .option('--baseline <point>', 'take the --markdown table\'s differences from this point (its label in the '
      + 'table\'s first column, e.g. n_experts=16) instead of the sweep file\'s baseline')
    .action(async (dir: string, o: { markdown?: string | true; baseline?: string }) => {
      const { writeReport, summaryMarkdown } = await import('../../apps/sweep/report.js');
      const { METRIC_COLUMNS } = await import('../../apps/sweep/results.js');
      if (o.markdown !== undefined) {
        const only = o.markdown === true ? undefined : o.markdown.split(',').map((c) => c.trim());
        const bad = only?.find((c) => !(METRIC_COLUMNS as readonly string[]).includes(c));
        if (bad !== undefined) throw new ConfigError(`report --markdown: each column must be one of ` +
          `${METRIC_COLUMNS.join(', ')} (got ${JSON.stringify(bad)})`);
        // a directory that is not a sweep's is bad input (SweepDirError, exit 2); any other failure exits 1
        process.stdout.write(summaryMarkdown(dir, only as MetricColumn[] | undefined, o.baseline));
        return;
      }
      if (o.baseline !== undefined) throw new ConfigError('report --baseline applies to --markdown only (the '
        + 'report and summary.csv keep the sweep file\'s baseline)');
      const file = await writeReport(dir);
      console.log(`wrote ${file}, ${dir}/summary.csv and ${dir}/charts/*.svg`);
    });
}
