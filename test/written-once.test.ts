import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const SRC = new URL('../src', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : /\.(ts|mts|cts)$/.test(e.name) ? [join(dir, e.name)] : []);
}

/** Each idea and the one file that may write it out; every other file calls that file. */
const OWNERS: { idea: string; pattern: RegExp; owner: string }[] = [
  { idea: 'an atomic write (a temporary file renamed into place)', pattern: /\brenameSync\(/, owner: 'core/util/fs.ts' },
  { idea: 'reading a JSON file', pattern: /JSON\.parse\(\s*(fs\.)?readFileSync\(/, owner: 'core/util/fs.ts' },
  { idea: 'the timestamp in a new directory\'s name', pattern: /toISOString\(\)\.replace\(/, owner: 'core/util/run-name.ts' },
  { idea: 'the two-stage Ctrl-C', pattern: /process\.(on|once|addListener)\(\s*'SIGINT'/, owner: 'core/util/interrupt.ts' },
];

test('atomic writes, JSON file reading, the run-name timestamp and the two-stage Ctrl-C are each written once, in their owner', (t) => {
  const files = sources(SRC).map((f) => ({ name: relative(SRC, f), text: readFileSync(f, 'utf8') }));
  for (const { idea, pattern, owner } of OWNERS) {
    const copies = files.filter((f) => f.name !== owner && pattern.test(f.text)).map((f) => f.name);
    t.deepEqual(copies, [], `${idea} belongs to src/${owner} only`);
    t.true(files.some((f) => f.name === owner && pattern.test(f.text)), `src/${owner} writes ${idea}`);
  }
});
