/**
 * The command line of bench/against.ts and the modes it measures, pure (tested in test/bench-against.test.ts).
 *   --against REV [--data PATH] [--rounds N] [--steps N] [--warmup W] [--configs a.yaml,b.yaml]
 *   [--modes local,coordinator,spmd,pair,half] [--trained N]
 * Paths (--data, --configs) are taken relative to the directory the command runs in and made absolute,
 * so that both trees' runs read the same files.
 */
import { isAbsolute, resolve } from 'node:path';

export const MODES = ['local', 'coordinator', 'spmd', 'pair', 'half'] as const;
export type Mode = (typeof MODES)[number];

/**
 * Each mode's config values (`--set` style), the same in both trees. `pair` is not a layout: two
 * in-process runs at the same time, each at half the batch (PAIR_COPIES processes, the batch divided by
 * as many): what this machine's cores give two busy threads doing about spmd D=2's arithmetic with no
 * barrier between them (a reference, not a bound: a replica does a little less than an in-process run).
 * `half` is one such run alone, counted as PAIR_COPIES of it in lockstep: what spmd D=2 would reach if
 * each device had a core to itself and the exchange, the barriers and the all-reduce cost nothing.
 */
export const MODE_SETS: Record<Mode, string[]> = {
  local: ['parallel.transport=local'],
  coordinator: ['parallel.transport=threads', 'parallel.layout=coordinator', 'parallel.devices=2'],
  spmd: ['parallel.layout=spmd', 'parallel.transport=threads', 'parallel.devices=2'],
  pair: ['parallel.transport=local'],
  half: ['parallel.transport=local'],
};

/** `pair`: how many in-process runs at once, each with the batch divided by this */
export const PAIR_COPIES = 2;

export const DEFAULT_CONFIGS = ['configs/tiny-moe.yaml', 'configs/tiny-shakespeare.yaml'];

export interface AgainstArgs {
  /** the git revision to compare with, as given */
  against: string;
  /** absolute path of a local Tiny Shakespeare, or '' for the embedded corpus (moby-dick) */
  data: string;
  rounds: number;
  /** steps each run trains, warm-up included */
  steps: number;
  /** the first steps of each run, not counted */
  warmup: number;
  /** absolute paths */
  configs: string[];
  modes: Mode[];
  /** 0: every run trains from scratch; N: every run continues from the config trained N steps (in-process) */
  trained: number;
}

export class UsageError extends Error {}

const known = ['--against', '--data', '--rounds', '--steps', '--warmup', '--configs', '--modes', '--trained'];

function positiveInt(name: string, text: string | undefined, min: number): number {
  const n = Number(text);
  if (text === undefined || !Number.isInteger(n) || n < min) {
    throw new UsageError(`--${name} wants an integer ≥ ${min}, got ${text}`);
  }
  return n;
}

/**
 * Parses argv (without node and the script). `cwd` resolves relative paths; `root` (the working tree)
 * resolves the default configs.
 */
export function parseAgainstArgs(argv: readonly string[], cwd: string, root: string): AgainstArgs {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const [flag, inline] = eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    if (!known.includes(flag)) throw new UsageError(`unknown argument ${a} (known: ${known.join(' ')})`);
    const value = inline ?? argv[++i];
    if (value === undefined || value === '') throw new UsageError(`${flag} wants a value`);
    values.set(flag.slice(2), value);
  }
  const against = values.get('against');
  if (!against) throw new UsageError('--against REV is required (a commit, branch or tag, e.g. --against HEAD~1)');
  const abs = (p: string, base: string) => (isAbsolute(p) ? p : resolve(base, p));
  const rounds = positiveInt('rounds', values.get('rounds') ?? '3', 1);
  const warmup = positiveInt('warmup', values.get('warmup') ?? '20', 0);
  const steps = positiveInt('steps', values.get('steps') ?? '40', warmup + 1);
  const trained = positiveInt('trained', values.get('trained') ?? '0', 0);
  const modes = (values.get('modes') ?? MODES.join(',')).split(',').filter(Boolean);
  for (const m of modes) {
    if (!(MODES as readonly string[]).includes(m)) {
      throw new UsageError(`unknown mode ${m} (modes: ${MODES.join(', ')})`);
    }
  }
  const configs = values.has('configs')
    ? values.get('configs')!.split(',').filter(Boolean).map((c) => abs(c, cwd))
    : DEFAULT_CONFIGS.map((c) => abs(c, root));
  const data = values.has('data') ? abs(values.get('data')!, cwd) : '';
  return { against, data, rounds, steps, warmup, configs, modes: [...new Set(modes)] as Mode[], trained };
}

/** The config values for the corpus: the local Tiny Shakespeare when given, else the embedded corpus. */
export function dataSets(data: string): string[] {
  return data ? ['data.dataset=tinyshakespeare', `data.path=${data}`] : ['data.dataset=moby-dick'];
}
