import test from 'ava';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingAs, readJson, writeFileAtomic } from '../src/core/util/fs.js';
import { timestampedRunDir, timeStamp } from '../src/core/util/run-name.js';
import { tempDir } from './helpers.js';

test('writeFileAtomic replaces a file whole and leaves no temporary file beside it', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'summary.json');
  writeFileSync(file, 'old');
  writeFileAtomic(file, 'new');
  writeFileAtomic(join(dir, 'durable.bin'), new Uint8Array([1, 2, 3]), { durable: true });
  t.is(readFileSync(file, 'utf8'), 'new');
  t.deepEqual([...readFileSync(join(dir, 'durable.bin'))], [1, 2, 3]);
  t.deepEqual(readdirSync(dir).sort(), ['durable.bin', 'summary.json']);
});

test('readJson: the contents; a missing, unreadable or malformed file goes to the caller\'s handler, by default an error naming the file', (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'good.json');
  const bad = join(dir, 'bad.json');
  writeFileSync(good, '{"steps": 4}');
  writeFileSync(bad, '{"steps": 4');
  t.deepEqual(readJson(good), { steps: 4 });
  t.throws(() => readJson(join(dir, 'none.json')), { message: `${join(dir, 'none.json')} does not exist` });
  t.throws(() => readJson(bad), { message: new RegExp(`^${bad} is not readable JSON \\(.+\\)$`) });
  t.is(readJson(join(dir, 'none.json'), missingAs(null)), null);
  t.throws(() => readJson(bad, missingAs(null)), { message: /is not readable JSON/ }, 'missingAs tolerates only a missing file');
  const seen: unknown[] = [];
  t.is(readJson(bad, (p) => (seen.push(p), 'stand-in')), 'stand-in');
  t.like(seen[0], { file: bad, missing: false });
  t.false(existsSync(join(dir, 'none.json')));
});

test('a new run directory: runs/<name>-<UTC time without : or .>, distinct from one a millisecond later', (t) => {
  const at = new Date(Date.UTC(2024, 4, 1, 12, 30, 5, 123));
  t.is(timeStamp(at), '2024-05-01T12-30-05-123');
  t.is(timestampedRunDir('quickstart', at), join('runs', 'quickstart-2024-05-01T12-30-05-123'));
  t.not(timestampedRunDir('q', at), timestampedRunDir('q', new Date(at.getTime() + 1)));
});
