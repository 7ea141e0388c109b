/**
 * Seeded, splittable randomness. Every random draw in a run comes from a stream named by
 * (seed, purpose, indices...), e.g. rngFor(seed, 'batch', step): resuming at step N needs no saved
 * generator state, and in-process and worker-thread runs draw exactly the same numbers.
 */
export class Rng {
  /**
   * sfc32's state a, b, c, d as int32 (the same bits as unsigned: every use is ToInt32/ToUint32); in four
   * number fields V8 would box the values above 2^30 on every draw.
   */
  private readonly s = new Int32Array(4);

  constructor(seed: number) {
    // splitmix32 to fill the sfc32 state from one 32-bit seed
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    for (let i = 0; i < 4; i++) this.s[i] = next();
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** sfc32: a 32-bit uniform integer. */
  u32(): number {
    const st = this.s;
    const a = st[0]!, b = st[1]!, c = st[2]!, d = st[3]!;
    const t = (((a + b) | 0) + d) | 0;
    st[3] = (d + 1) | 0;
    st[0] = b ^ (b >>> 9);
    st[1] = (c + (c << 3)) | 0;
    st[2] = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.uniform();
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Normal with standard deviation `std`, redrawn outside ±2 std (truncated normal). */
  truncatedNormal(std: number): number {
    for (;;) {
      const z = this.normal();
      if (Math.abs(z) <= 2) return z * std;
    }
  }

  /** A random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }
}

/** FNV-1a over the stream's name and indices, mixed with the seed. */
function hashStream(seed: number, purpose: string, indices: number[]): number {
  let h = 0x811c9dc5 ^ seed;
  const eat = (x: number) => {
    h ^= x & 0xff;
    h = Math.imul(h, 0x01000193);
  };
  for (let i = 0; i < purpose.length; i++) eat(purpose.charCodeAt(i));
  for (const n of indices) for (let k = 0; k < 4; k++) eat((n >>> (8 * k)) & 0xff);
  return h >>> 0;
}

/** The random stream for one purpose and position in the run. */
export function rngFor(seed: number, purpose: string, ...indices: number[]): Rng {
  return new Rng(hashStream(seed, purpose, indices));
}
