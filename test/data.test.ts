import test from 'ava';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Dataset } from '../src/core/data/batches.js';
import { loadCorpus } from '../src/core/data/corpus.js';
import { CharTokenizer } from '../src/core/data/tokenizer.js';
import { CORPUS, tempDir } from './helpers.js';

test('the embedded corpus needs no network; the tokenizer round-trips', async (t) => {
  const c = await loadCorpus('moby-dick', '');
  t.true(c.text.length > 1_000_000);
  const tok = CharTokenizer.fromText(c.text);
  const sample = c.text.slice(1000, 1200);
  t.is(tok.decode(tok.encode(sample)), sample);
  t.deepEqual(tok.encodeKnown('a\u0000b').skipped, 1);
});

test('tinyshakespeare: data.path wins; offline, a clear error says how to supply the file', async (t) => {
  const c = await loadCorpus('tinyshakespeare', CORPUS);
  t.is(c.source, CORPUS);
  const cache = tempDir(t);
  const env = { ...process.env };
  process.env.SWITCH_SIM_CACHE = cache;
  process.env.SWITCH_SIM_TINYSHAKESPEARE_URL = 'http://127.0.0.1:9/input.txt'; // nothing listens on the discard port
  try {
    const e = await t.throwsAsync(loadCorpus('tinyshakespeare', ''));
    t.regex(e!.message, /^config error: data\.dataset tinyshakespeare could not be downloaded \(.*\); save input\.txt from karpathy\/char-rnn as .*tinyshakespeare\.txt or set data\.path=/);
    t.false(existsSync(join(cache, 'tinyshakespeare.txt')));
  } finally {
    process.env.SWITCH_SIM_CACHE = env.SWITCH_SIM_CACHE;
    process.env.SWITCH_SIM_TINYSHAKESPEARE_URL = env.SWITCH_SIM_TINYSHAKESPEARE_URL;
    if (env.SWITCH_SIM_CACHE === undefined) delete process.env.SWITCH_SIM_CACHE;
    if (env.SWITCH_SIM_TINYSHAKESPEARE_URL === undefined) delete process.env.SWITCH_SIM_TINYSHAKESPEARE_URL;
  }
});

test('batches: the same (seed, index) gives the same batch; targets are the next characters; val is the tail', async (t) => {
  const c = await loadCorpus('tinyshakespeare', CORPUS);
  const tok = CharTokenizer.fromText(c.text);
  const data = new Dataset(tok, c.text, 0.1, 32);
  t.is(data.train.length + data.val.length, Array.from(c.text).length);
  const a = data.batch('train', 7, 3, 4);
  const b = data.batch('train', 7, 3, 4);
  t.deepEqual(a.x, b.x);
  t.notDeepEqual(a.x, data.batch('train', 7, 4, 4).x);
  for (let i = 0; i < 31; i++) t.is(a.y[i], a.x[i + 1]);
});
