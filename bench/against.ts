/**
 * Training tokens/s of the working tree against git revision REV, side by side on this machine.
 *   npx tsx bench/against.ts --against REV [--data PATH] [--rounds N] [--steps N] [--warmup W]
 *     [--configs a.yaml,b.yaml] [--modes local,coordinator,spmd,pair,half] [--trained N]
 * REV is checked out with `git worktree add --detach` into a temporary directory (removed at the end, on
 * an error and on Ctrl-C). Each run trains one config in one mode for N steps (default 40, the first W,
 * default 20, not counted: device threads compile their own code, and the first steps measure that) in a
 * fresh process of its own tree (bench/against-runner.ts, copied into REV's tree); the trees take turns in
 * each round, the working tree first in even rounds and REV first in odd ones, so that the machine's drift hits
 * both alike. Both trees read the working tree's config files
 * (default configs/tiny-moe.yaml and configs/tiny-shakespeare.yaml) and the same corpus: --data PATH, a
 * local Tiny Shakespeare, else the embedded corpus (moby-dick). Rounds default to 3.
 * Modes: local (in-process devices, parallel.transport=local), coordinator (device threads, D=2),
 * spmd (D=2), and pair: two in-process runs at half the batch each, in two processes at the same time,
 * their tokens over the slower one's step time (what this machine's two cores give two busy threads
 * doing about spmd D=2's arithmetic with no barrier between them: a reference, not a bound), and half:
 * one such half-batch run alone, counted twice (spmd D=2 with a core per device and nothing else costing
 * anything). Printed per config and mode: each tree's tokens/s, median (min–max) over rounds, and
 * working/REV, the median (min–max) of the per-round ratios; then spmd, pair and half relative to local
 * within each tree, and spmd relative to pair and to half.
 * --trained N: first trains each config N steps in-process with the working tree (a few minutes), and every
 * run of either tree continues from that checkpoint: the steps measured are then a trained model's, whose
 * router spreads tokens more evenly than a fresh one's (the early steps' uneven loads make spmd's devices
 * wait for each other at every exchange). The checkpoints are removed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataSets, MODE_SETS, parseAgainstArgs, UsageError, type AgainstArgs, type Mode }
  from './against-args.js';
import { compare, formatSpread, measureMode, pairedRatios, roundOrder, spread, type TreeName }
  from './against-stats.js';
import { addRevTree, machine, measure, running, trainRun, workingCommit, type RevTree } from './against-tree.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const log = (line: string) => console.error(line);

interface Cell { config: string; mode: Mode; tokens: Record<TreeName, number[]> }

/** --trained N: each config trained N steps in-process by the working tree's CLI; its checkpoint per config */
async function trainCheckpoints(args: AgainstArgs, dir: string, stop: { requested: boolean }):
  Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [i, config] of args.configs.entries()) {
    if (stop.requested) throw new Error('interrupted');
    const run = join(dir, `run-${i}`);
    const sets = [...dataSets(args.data), ...MODE_SETS.local, `train.steps=${args.trained}`, 'train.eval_every=0',
      'train.checkpoint_every=0'];
    log(`training ${basename(config, '.yaml')} ${args.trained} steps in-process (--trained) into ${run}`);
    await trainRun(root, config, sets, run).catch((e: unknown) => {
      throw stop.requested ? new Error('interrupted') : e;
    });
    out.set(config, join(run, 'checkpoints', `step-${args.trained}`));
  }
  return out;
}

async function measureAll(args: AgainstArgs, rev: RevTree, stop: { requested: boolean },
  checkpoints: Map<string, string>): Promise<Cell[]> {
  const cells: Cell[] = args.configs.flatMap((config) =>
    args.modes.map((mode) => ({ config, mode, tokens: { working: [], rev: [] } })));
  const dirs: Record<TreeName, string> = { working: root, rev: rev.dir };
  for (let r = 0; r < args.rounds; r++) {
    for (const cell of cells) {
      for (const tree of roundOrder(r)) {
        if (stop.requested) throw new Error('interrupted');
        const sets = [...dataSets(args.data), ...MODE_SETS[cell.mode]];
        const { steps, warmup } = args;
        const checkpoint = checkpoints.get(cell.config);
        const one = (batchDivisor?: number) =>
          measure(dirs[tree], { config: cell.config, steps, warmup, sets, batchDivisor, checkpoint });
        const m = await measureMode(cell.mode, one).catch((e: unknown) => {
          throw stop.requested ? new Error('interrupted') : e;
        });
        cell.tokens[tree].push(m.tokens_per_s);
        const name = tree === 'working' ? 'working' : rev.commit;
        log(`round ${r + 1}/${args.rounds} ${basename(cell.config, '.yaml')} ${cell.mode} ${name}: `
          + `${m.tokens_per_s.toFixed(0)} tokens/s (${m.ms_per_step.toFixed(0)} ms/step, ${m.counted_steps} steps)`);
      }
    }
  }
  return cells;
}

function report(args: AgainstArgs, rev: RevTree, cells: Cell[], working: string): string[] {
  const corpus = args.data ? `Tiny Shakespeare (${args.data})` : 'moby-dick (embedded)';
  const lines = [
    `working tree vs ${rev.commit} (${args.against}): ${args.rounds} rounds of ${args.steps} steps per run, `
      + `${args.warmup} warm-up not counted; tokens/s median (min–max) over rounds; corpus ${corpus}`
      + (args.trained ? `; every run continues from the config trained ${args.trained} steps` : ''),
    `${'config'.padEnd(20)} ${'mode'.padEnd(12)} ${'working'.padStart(22)} ${rev.commit.padStart(22)} `
      + `${'working/REV'.padStart(20)}  per round`,
  ];
  for (const c of cells) {
    const cmp = compare(c.tokens.working, c.tokens.rev);
    lines.push(`${basename(c.config, '.yaml').padEnd(20)} ${c.mode.padEnd(12)} `
      + `${formatSpread(cmp.working).padStart(22)} ${formatSpread(cmp.rev).padStart(22)} `
      + `${formatSpread(cmp.ratio, { ratio: true }).padStart(20)}  `
      + cmp.ratios.map((x) => x.toFixed(2)).join('/'));
  }
  const relative = (num: Mode, den: Mode, title: string) => {
    if (!args.modes.includes(num) || !args.modes.includes(den)) return;
    lines.push(`${title}, same tree, median (min–max) of per-round ratios:`);
    for (const config of args.configs) {
      const of = (mode: Mode) => cells.find((c) => c.config === config && c.mode === mode)!.tokens;
      const rel = (tree: TreeName) =>
        formatSpread(spread(pairedRatios(of(num)[tree], of(den)[tree])), { ratio: true });
      lines.push(`${basename(config, '.yaml').padEnd(20)} working ${rel('working')}   ${rev.commit} ${rel('rev')}`);
    }
  };
  relative('spmd', 'local', 'spmd D=2 relative to local (in-process)');
  relative('pair', 'local', 'pair (two half-batch in-process runs at once, no barriers) relative to local');
  relative('half', 'local', 'half (one half-batch run alone, counted twice: spmd D=2 with nothing shared) '
    + 'relative to local');
  relative('spmd', 'pair', 'spmd D=2 relative to pair');
  relative('spmd', 'half', 'spmd D=2 relative to half');
  lines.push(`machine: ${machine()}; node ${process.version}; working tree ${working}, REV ${rev.commit} `
    + `(node_modules ${rev.modules})`);
  return lines;
}

async function main(): Promise<void> {
  let args: AgainstArgs;
  try {
    args = parseAgainstArgs(process.argv.slice(2), process.cwd(), root);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    log(`bench/against: ${e.message}`);
    process.exitCode = 2;
    return;
  }
  const working = workingCommit(root);
  const rev = addRevTree(root, args.against, log);
  log(`${args.against} = ${rev.commit} checked out in ${rev.dir} (node_modules ${rev.modules})`);
  const stop = { requested: false };
  const onSignal = (signal: NodeJS.Signals) => {
    log(`bench/against: ${signal}, stopping the run and removing ${rev.dir}`);
    stop.requested = true;
    process.exitCode = 130;
    for (const child of running) child.kill('SIGTERM');
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const trainedDir = args.trained ? mkdtempSync(join(tmpdir(), 'switch-sim-against-trained-')) : undefined;
  try {
    const checkpoints = trainedDir ? await trainCheckpoints(args, trainedDir, stop) : new Map<string, string>();
    const cells = await measureAll(args, rev, stop, checkpoints);
    for (const line of report(args, rev, cells, working)) console.log(line);
  } finally {
    rev.remove();
    if (trainedDir) rmSync(trainedDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

try {
  await main();
} catch (e) {
  log(`bench/against: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode ||= 1;
}
