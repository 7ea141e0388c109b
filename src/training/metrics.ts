import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** DIR/metrics.jsonl: one JSON object per logged step or evaluation; DIR/summary.json at the end. */
export class MetricsWriter {
  readonly file: string;
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, 'metrics.jsonl');
  }

  write(record: Record<string, unknown>): void {
    appendFileSync(this.file, `${JSON.stringify(record)}\n`);
  }

  summary(summary: Record<string, unknown>): void {
    writeFileSync(join(this.dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }
}
