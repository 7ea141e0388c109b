import cliProgress from 'cli-progress';
import type { Config } from '../core/config/defaults.js';
import type { EvalReport } from '../training/evaluate.js';
import type { StepReport } from '../training/trainer.js';

/** The resolved config on stdout, briefly: one line per section. */
export function printConfig(config: Config, name: string): void {
  const lines = Object.entries(config).map(([k, v]) =>
    typeof v === 'object' ? `  ${k}: ${JSON.stringify(v).replace(/"/g, '').replace(/,/g, ', ').replace(/:/g, ': ')}`
      : `  ${k}: ${v}`);
  process.stdout.write(`config ${name}\n${lines.join('\n')}\n`);
}

export interface ProgressReporter {
  log: (line: string) => void;
  onStep?: (s: StepReport) => void;
  stop: () => void;
}

/** A progress bar on a TTY (step, loss, tokens/s, ETA); plain periodic lines otherwise. */
export function progressReporter(steps: number): ProgressReporter {
  if (!process.stderr.isTTY) return { log: (l) => console.log(l), stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: 'train |{bar}| {value}/{total} loss {loss} ce {ce} | {tps} tok/s | ETA {eta_formatted}',
      hideCursor: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    log: (l) => (started ? process.stderr.write(`\r\x1b[K${l}\n`) : console.log(l)),
    onStep: (s) => {
      if (!started) {
        bar.start(steps, s.step - 1, { loss: '-', ce: '-', tps: '-' });
        started = true;
      }
      bar.update(s.step, { loss: s.loss.toFixed(4), ce: s.ce.toFixed(4), tps: s.tokensPerS.toFixed(0) });
    },
    stop: () => {
      if (started) bar.stop();
      started = false;
    },
  };
}

/** `switch-sim eval` as a table: the scores, then one row per Switch layer. */
export function formatEval(r: EvalReport): string {
  const head = [
    `checkpoint ${r.checkpoint} (step ${r.step}), split ${r.split}, ${r.batches} batches, eval capacity ` +
      `factor ${r.capacity_factor}`,
    `ce ${r.ce.toFixed(4)}  drop fraction ${r.drop_fraction.toFixed(4)}`,
    'layer  drop_fraction  load_max_over_mean  router_entropy',
  ];
  const rows = r.layers.map((l, i) =>
    `${String(i).padEnd(5)}  ${l.drop_fraction.toFixed(4).padStart(13)}  ` +
      `${l.load_max_over_mean.toFixed(3).padStart(18)}  ${l.router_entropy.toFixed(4).padStart(14)}`);
  return `${[...head, ...rows].join('\n')}\n`;
}
