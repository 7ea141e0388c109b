import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../../core/util/fs.js';
import { tuneHeap } from '../../core/util/heap.js';

/**
 * The file every device thread starts from. A thread of its own does not inherit the main thread's
 * TypeScript loader (Node 20), and registering tsx in each thread cost 0.2-0.4 s of CPU per thread
 * (it starts a loader thread of its own; bench/thread-start.ts). So the handlers and everything they import are bundled
 * once per process with esbuild (tsx's own compiler, ~30 ms) into one plain ES module under
 * node_modules/.cache/switch-sim/, named by its content's hash: a thread loads it with no loader at
 * all, and a changed source gives a new file, never a stale one. Packages stay external (they
 * resolve from the repository's node_modules, as before), and each source's `import.meta.url`
 * keeps pointing at that source, so files beside it (attention.wasm) are found. Where the cache
 * cannot be written, threads fall back to worker-entry.mjs, which registers tsx.
 *
 * Threads that open Dawn (parallel.backend webgpu or gpujs) start through tsx as before: with the
 * bundle's quicker threads, a run on webgpu followed by one on gpujs in the same process crashed in
 * about one of four tries here (SIGSEGV in a thread-exit destructor of a library Dawn's OpenGL
 * backend had unloaded, Mesa without a GPU), and in none of nine through tsx.
 */
const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..', '..');
const CACHE = join(ROOT, 'node_modules', '.cache', 'switch-sim');
const FALLBACK = pathToFileURL(join(HERE, '..', 'entry', 'worker-entry.mjs')).href;

let file: Promise<string> | undefined;

/** What piscina starts a device thread with. */
export interface WorkerStart {
  filename: string;
  /**
   * the parent's Node flags less tsx's (`--import tsx`, as ava runs tests): a thread that inherited them would
   * load tsx anyway
   */
  execArgv: string[];
}

/** Where device threads start from, given the tfjs or gpu.js backends they open (their heap sized by tuneHeap). */
export async function workerStart(...backends: string[]): Promise<WorkerStart> {
  tuneHeap();
  return { filename: await workerFile(...backends), execArgv: withoutTsx(process.execArgv) };
}

function withoutTsx(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const flag = /^--(import|loader|experimental-loader|require)(=(.*))?$/.exec(a);
    if (a === '-r' || (flag && flag[2] === undefined)) {
      if (/\btsx\b/.test(args[i + 1] ?? '')) { i++; continue; }
    } else if (flag && /\btsx\b/.test(flag[3]!)) continue;
    out.push(a);
  }
  return out;
}

/** The URL of the file device threads start from (the bundle is built on first use, then the same for the process). */
export function workerFile(...backends: string[]): Promise<string> {
  if (backends.some((b) => b === 'webgpu' || b === 'gpujs')) return Promise.resolve(FALLBACK);
  file ??= bundle().catch((e: Error) => {
    if (process.env.SWITCH_SIM_DEBUG)
      console.error(`device threads: no bundle (${e.message}); loading TypeScript through tsx`);
    return FALLBACK;
  });
  return file;
}

async function bundle(): Promise<string> {
  if (process.env.SWITCH_SIM_WORKER_TSX) throw new Error('SWITCH_SIM_WORKER_TSX is set');
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [join(HERE, '..', 'entry', 'handlers.ts')],
    bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', write: false,
    logLevel: 'silent',
    // the bundle's CommonJS parts (tfjs.cjs) call require: give them one that resolves from the repository
    banner: { js: "import { createRequire as __switchSimRequire } from 'node:module'; const require = " +
      "__switchSimRequire(import.meta.url);" },
    plugins: [{
      name: 'source-import-meta-url',
      setup(build) {
        build.onLoad({ filter: /\.ts$/ }, (args) => ({
          contents: readFileSync(args.path, 'utf8')
            .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
          loader: 'ts',
        }));
      },
    }],
  });
  const code = result.outputFiles[0]!.contents;
  const path = join(CACHE, `worker-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
  if (!existsSync(path)) {
    mkdirSync(CACHE, { recursive: true });
    writeFileAtomic(path, code); // whole or not at all: another process may be starting threads from it
  }
  return pathToFileURL(path).href;
}
