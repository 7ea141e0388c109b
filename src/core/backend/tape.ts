import tf from '../util/tfjs.cjs';
import { PROFILE, type Recorder, type TapeLabel } from '../instrument/recorder.js';

/**
 * Reverse-mode autodiff split in two: record a forward pass now, back-propagate later.
 *
 * tf.grads runs the forward and the backward in one call. A Switch model's stages are separated by
 * asynchronous expert work, so `tf.grads` would have to run every stage's forward twice (once to get
 * the outputs, again inside tf.grads). `record` runs f once with tfjs's tape on and detaches the tape;
 * `backprop` later walks it in reverse from the given output gradients, exactly as tfjs's own
 * backpropagateGradients does. This uses the engine's tape internals (pinned by package-lock.json); the
 * gradients are checked against finite differences and against tf.grads in test/engine.test.ts.
 */
interface TapeNode {
  outputs: tf.Tensor[];
  inputs: Record<string, tf.Tensor>;
  kernelName: string;
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

interface EngineTape {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
}

export interface Recording<T> {
  value: T;
  tape: TapeNode[];
  /** with profiling on: which phase recorded which tape nodes, to time their backward apart */
  labels?: TapeLabel[];
}

/**
 * Runs f (under tidy) with the tape on; the returned tensors and the tape's saved tensors stay alive.
 * If f throws, the tape is detached and what it saved is freed before the error propagates.
 */
export function record<T extends tf.TensorContainer>(f: () => T): Recording<T> {
  const engine = tf.engine() as unknown as EngineTape;
  if (engine.state.gradientDepth !== 0) throw new Error('record() cannot run inside another gradient computation');
  engine.startTape();
  PROFILE?.startLabels();
  let value: T;
  try {
    value = tf.tidy(f);
  } catch (e) {
    PROFILE?.takeLabels();
    release({ value: undefined, tape: detach(engine) });
    throw e;
  } finally {
    if (engine.state.gradientDepth !== 0) engine.endTape();
  }
  return { value, tape: detach(engine), labels: PROFILE?.takeLabels() };
}

/** Takes the finished tape off the engine: the next recording starts a tape of its own. */
function detach(engine: EngineTape): TapeNode[] {
  const tape = engine.state.activeTape ?? [];
  engine.state.activeTape = null;
  return tape;
}

/**
 * ∂(Σ_i ⟨y_i, dy_i⟩)/∂x for each x in xs, walking the recorded tape in reverse. Seeds pair a recorded
 * output with its gradient; an x the outputs do not depend on gets zeros.
 */
export function backprop(rec: Recording<unknown>, seeds: [tf.Tensor, tf.Tensor][], xs: tf.Tensor[]): tf.Tensor[] {
  const timer = PROFILE && rec.labels ? new BackwardTimer(PROFILE, rec.tape.length, rec.labels) : undefined;
  return tf.tidy(() => {
    const acc = new Map<number, tf.Tensor>();
    for (const [y, dy] of seeds) acc.set(y.id, acc.has(y.id) ? tf.add(acc.get(y.id)!, dy) : dy);
    for (let i = rec.tape.length - 1; i >= 0; i--) {
      const node = rec.tape[i]!;
      if (!node.outputs.some((o) => acc.has(o.id))) continue;
      if (!node.gradient) throw new Error(`no gradient for ${node.kernelName}`);
      const t0 = timer ? performance.now() : 0;
      const grads = node.gradient(node.outputs.map((o) => acc.get(o.id) ?? null));
      for (const name of Object.keys(node.inputs)) {
        if (!(name in grads)) continue;
        const x = node.inputs[name]!;
        const dx = grads[name]!();
        const prev = acc.get(x.id);
        acc.set(x.id, prev ? tf.add(prev, dx) : dx);
      }
      timer?.node(i, t0, performance.now());
    }
    timer?.flush();
    // a gradient may be a seed's tensor, or one tensor for two inputs (a residual's): those are cloned (a copy on
    // wasm), so that every result is the caller's own
    const taken = new Set(seeds.map(([, dy]) => dy.id));
    return xs.map((x) => {
      const g = acc.get(x.id);
      if (!g) return tf.zerosLike(x);
      if (taken.has(g.id)) return g.clone();
      taken.add(g.id);
      return g;
    });
  });
}

/**
 * Times a tape walk node by node and reports each run of nodes from one forward phase as that phase's
 * backward span.
 */
class BackwardTimer {
  private readonly owner: Int32Array;
  private run = { label: -2, from: 0, to: 0 };

  constructor(private readonly rec: Recorder, nodes: number, private readonly labels: TapeLabel[]) {
    // labels close inner-first, so the first label to claim a node is its innermost phase
    this.owner = new Int32Array(nodes).fill(-1);
    labels.forEach((l, j) => {
      for (let i = l.from; i < l.to; i++) if (this.owner[i] === -1) this.owner[i] = j;
    });
  }

  node(i: number, t0: number, t1: number): void {
    const label = this.owner[i]!;
    if (label !== this.run.label) {
      this.flush();
      this.run = { label, from: t0, to: t1 };
    } else this.run.to = t1;
  }

  flush(): void {
    const { label, from, to } = this.run;
    if (label === -2) return;
    const l = this.labels[label];
    this.rec.add({
      name: l?.name ?? 'backward_other', cat: 'compute', lane: { kind: 'coordinator' }, ts: from, dur: to - from,
      block: l?.block, dir: 'bwd',
    });
    this.run = { label: -2, from: 0, to: 0 };
  }
}

/** Frees what the tape kept for the backward pass. */
export function release(rec: Recording<unknown>): void {
  for (const node of rec.tape) for (const t of node.saved ?? []) t.dispose();
  rec.tape = [];
}
