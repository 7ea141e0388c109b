import { spawn } from 'node:child_process';
import tf from '../../core/util/tfjs.cjs';
import { expertBackward, expertForward } from './ffn.js';
import { openDawn } from '../../core/backend/dawn.js';
import { initBackend, releaseBackend } from '../../core/backend/init.js';
import { GpuJsExperts } from './gpujs-ffn.js';
import { openGpuJs } from './gpujs-runtime.js';
import { meanMs } from '../../core/util/timing.js';
import { PROBED, type Probed } from '../../core/backend/names.js';

export { PROBED, type Probed };

/** What `switch-sim backends` measures of one backend, in one process of its own. */
export interface BackendProbe {
  backend: string;
  available: boolean;
  /** why not, when not available */
  error?: string;
  /** the GPU adapter (webgpu), else the backend's kind */
  adapter?: string;
  /** [n, d]·[d, d_ff] at an expert's shape */
  matmul_gflops?: number;
  /** one expert's forward and backward: 12·n·d·d_ff FLOPs (gpujs: matmul_gflops is its forward, 4·n·d·d_ff) */
  expert_gflops?: number;
  /** host → backend and back, for backends with memory of their own */
  upload_gbps?: number;
  download_gbps?: number;
  shape: { n: number; d: number; d_ff: number };
}


/** tiny-shakespeare's expert: 640 rows (capacity 1.25 · 1024 / 4 · 2 groups), d_model 128, d_ff 256 */
const SHAPE = { n: 640, d: 128, d_ff: 256 };

const time = (f: () => unknown) => meanMs(f);

/**
 * gpu.js kernels at the expert's shape (WebGPU when Dawn has an adapter, else gpu.js's CPU mode), weights
 * resident as a device keeps them.
 */
async function probeGpuJs(): Promise<BackendProbe> {
  const { n, d, d_ff } = SHAPE;
  const rt = await openGpuJs();
  const ex = new GpuJsExperts(rt, d, d_ff, 'relu');
  const r = (k: number, seed: number) => Float32Array.from({ length: k }, (_, i) => Math.sin(i * seed) * 0.1);
  const [x, g, w1, b1, w2, b2] = await Promise.all([
    r(n * d, 1), r(n * d, 2), r(d * d_ff, 3), r(d_ff, 4), r(d_ff * d, 5), r(d, 6),
  ].map((a) => rt.upload(a)));
  const w = { w1: w1!, b1: b1!, w2: w2!, b2: b2! };
  const mm = await time(async () => {
    const f = await ex.forward(x!, n, w); // X·W1 then the second layer: 4·n·d·d_ff
    await rt.download(f.a);
    rt.release(f.a, f.o);
  });
  const both = await time(async () => {
    const f = await ex.forward(x!, n, w);
    const b = await ex.backward(x!, f.a, g!, n, w);
    await Promise.all([rt.download(f.o), rt.download(b.dx), rt.download(b.w1)]);
    rt.release(f.o, f.a, b.dx, b.w1, b.b1, b.w2, b.b2);
  });
  const probe: BackendProbe = {
    backend: 'gpujs', available: true,
    adapter: rt.resident ? `gpu.js on WebGPU: ${(await openDawn()).adapter}` : 'gpu.js CPU mode (no WebGPU adapter)',
    shape: SHAPE,
    matmul_gflops: (4 * n * d * d_ff) / mm / 1e6, expert_gflops: (12 * n * d * d_ff) / both / 1e6,
  };
  if (rt.resident) {
    const values = 4 * 2 ** 20; // 16 MB
    const host = new Float32Array(values).fill(1);
    const up = await time(async () => {
      const t = await rt.upload(host);
      // the whole buffer goes up, one value comes back
      const one = await rt.run(rt.kernel('probe.first', gpuFirst, [1]), t);
      await rt.download(one);
      rt.release(t, one);
    });
    const onDevice = await rt.upload(host);
    const down = await time(() => rt.download(onDevice));
    rt.release(onDevice, x, g, w1, b1, w2, b2);
    probe.upload_gbps = host.byteLength / up / 1e6;
    probe.download_gbps = host.byteLength / down / 1e6;
  }
  rt.dispose();
  return probe;
}

function gpuFirst(this: unknown, x: Float32Array): number {
  return x[0]!;
}

/** Probes the backend in this process (it becomes this process's backend). */
export async function probeHere(name: Probed): Promise<BackendProbe> {
  if (name === 'gpujs') return probeGpuJs();
  await initBackend(name);
  const { n, d, d_ff } = SHAPE;
  const rnd = (shape: number[]) => tf.randomNormal(shape, 0, 0.1);
  const x = rnd([n, d]) as tf.Tensor2D;
  const w = {
    w1: rnd([d, d_ff]) as tf.Tensor2D, b1: tf.zeros([d_ff]) as tf.Tensor1D, w2: rnd([d_ff, d]) as tf.Tensor2D,
    b2: tf.zeros([d]) as tf.Tensor1D,
  };
  const g = rnd([n, d]) as tf.Tensor2D;
  const mm = await time(async () => {
    const y = tf.matMul(x, w.w1);
    await y.data();
    y.dispose();
  });
  const expert = await time(async () => {
    const f = expertForward(x, w, 'relu');
    const r = expertBackward(x, f.a, g, w, 'relu');
    await Promise.all([f.o.data(), r.dx.data(), r.w1.data(), r.w2.data()]);
    tf.dispose([f.o, f.a, r.dx, r.w1, r.b1, r.w2, r.b2]);
  });
  const probe: BackendProbe = {
    backend: name, available: true, adapter: name === 'webgpu' ? (await openDawn()).adapter : name, shape: SHAPE,
    matmul_gflops: (2 * n * d * d_ff) / mm / 1e6, expert_gflops: (12 * n * d * d_ff) / expert / 1e6,
  };
  if (name === 'webgpu' || name === 'tensorflow') {
    const bytes = 16 * 2 ** 20;
    const host = new Float32Array(bytes / 4).fill(1);
    const up = await time(async () => {
      const t = tf.tensor1d(host);
      const one = t.slice(0, 1); // the whole buffer goes up, one value comes back
      await one.data();
      tf.dispose([t, one]);
    });
    const onDevice = tf.fill([bytes / 4], 2);
    const down = await time(async () => {
      const t = onDevice.add(0);
      await t.data();
      t.dispose();
    });
    probe.upload_gbps = bytes / up / 1e6;
    probe.download_gbps = bytes / down / 1e6;
  }
  await releaseBackend();
  return probe;
}

const BIN = new URL('../../../bin/switch-sim.js', import.meta.url).pathname;

/** Probes one backend in a child process, so that a missing package or a crashing driver is just "not available". */
export function probeInChild(name: Probed): Promise<BackendProbe> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, 'backends', '--only', name, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => {
      const last = out.trim().split('\n').at(-1);
      if (code === 0 && last) return resolve(JSON.parse(last) as BackendProbe);
      const why = err.split('\n').map((l) => l.trim()).filter((l) => l && !/^Warning:/.test(l)).at(-1) ?? `exit code ${code}`;
      resolve({ backend: name, available: false, error: why.replace(/^error: /, ''), shape: SHAPE });
    });
  });
}

/** The fastest available backend by expert forward+backward GFLOP/s; wasm if none answered. */
export function pickFastest(probes: BackendProbe[]): Probed {
  const best = probes.filter((p) => p.available).sort((a, b) => (b.expert_gflops ?? 0) - (a.expert_gflops ?? 0))[0];
  return (best?.backend ?? 'wasm') as Probed;
}

/** `parallel.backend: auto`: probes every backend (a process each) and picks the fastest. */
export async function fastestBackend(): Promise<{ choice: Probed; probes: BackendProbe[] }> {
  const probes: BackendProbe[] = [];
  for (const b of PROBED) probes.push(await probeInChild(b));
  return { choice: pickFastest(probes), probes };
}
