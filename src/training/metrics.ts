import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/util/fs.js';

/** What metrics.jsonl already holds up to a resumed step: its validation losses, the last one apart. */
export interface PastRecords {
  valCes: number[];
  lastEval: { step: number; ce: number } | undefined;
}

/** DIR/metrics.jsonl: one JSON object per logged step or evaluation; DIR/summary.json at the end. */
export class MetricsWriter {
  readonly file: string;
  constructor(readonly dir: string) {
    this.file = join(dir, 'metrics.jsonl');
  }

  write(record: Record<string, unknown>): void {
    appendFileSync(this.file, `${JSON.stringify(record)}\n`);
  }

  /** Replaces summary.json whole: a crash while writing leaves the old one, never half a file. */
  summary(summary: Record<string, unknown>): void {
    writeFileAtomic(join(this.dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }

  /**
   * Drops the records logged after `step` (a crash after the last checkpoint leaves some; the resumed
   * run logs those steps again), replacing the file atomically, and returns what is kept of the evaluations.
   */
  truncateAfter(step: number): PastRecords {
    const past: PastRecords = { valCes: [], lastEval: undefined };
    if (!existsSync(this.file)) return past;
    const kept: string[] = [];
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      let rec: { step?: number; val_ce?: number };
      try {
        rec = JSON.parse(line);
      } catch {
        continue; // a line cut off by a crash
      }
      if (typeof rec.step !== 'number' || rec.step > step) continue;
      kept.push(line);
      if (typeof rec.val_ce === 'number') {
        past.valCes.push(rec.val_ce);
        past.lastEval = { step: rec.step, ce: rec.val_ce };
      }
    }
    writeFileAtomic(this.file, kept.map((l) => `${l}\n`).join(''));
    return past;
  }
}
