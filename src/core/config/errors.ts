/**
 * A config problem, always reported as one line: `config error: <key> <rule> (got <value>)`. A line break
 * that reaches the message (a key or file name with one in it) is written as `\n`, so it stays one line.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(message: string) {
    const line = message.replace(/\r?\n|\r/g, '\\n');
    super(line.startsWith('config error:') ? line : `config error: ${line}`);
  }
}

/** Formats a value for an error message the way a user typed it. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'nothing';
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return String(value);
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

export function nearest(key: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(key, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}
