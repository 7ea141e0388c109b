import tf from '../src/core/util/tfjs.cjs';
import type { Config } from '../src/core/config/defaults.js';
import { allocateLayerBuffers } from '../src/core/comm/buffers.js';
import { SwitchDispatcher } from '../src/runtime/coordinator/switch-dispatch.js';
import { LocalDevice } from '../src/runtime/devices/local-device.js';
import { initExpertParams } from '../src/core/model/params.js';
import { combine, routingConstants, disposeConstants } from '../src/core/router/gates.js';
import type { RoutingPlan } from '../src/core/router/plan.js';
import { rngFor } from '../src/core/util/rng.js';

export interface SwitchRun {
  y: Float32Array;
  plan: RoutingPlan;
}

/** One Switch layer through the real path: route → pack → devices → unpack → × gate. */
export async function runSwitch(config: Config, u: Float32Array, logits: Float32Array, step = 1): Promise<SwitchRun> {
  const N = u.length / config.model.d_model;
  const d = config.model.d_model;
  const E = config.moe.n_experts;
  const buffers = [allocateLayerBuffers(config.parallel.devices, E, N, d)];
  const devices = Array.from({ length: config.parallel.devices }, (_, i) => new LocalDevice(config, i, [0], buffers));
  const dispatcher = new SwitchDispatcher(config, devices, buffers);
  const probs = tf.tidy(() => tf.softmax(tf.tensor2d(logits, [N, E]))).dataSync() as Float32Array;
  const plan = dispatcher.route(0, probs, 'train', step, { offset: 0, count: config.parallel.devices });
  const sw = await dispatcher.forward(0, 0, plan, u, true, step);
  const K = plan.topK;
  const outs = Array.from({ length: K }, (_, c) => {
    const o = new Float32Array(N * d);
    for (let t = 0; t < N; t++) o.set(sw.outputs.subarray((t * K + c) * d, (t * K + c + 1) * d), t * d);
    return tf.tensor2d(o, [N, d]);
  });
  const rc = routingConstants(plan);
  const lt = tf.tensor2d(logits, [N, E]);
  const yT = combine(lt, outs, rc, config.moe);
  const y = yT.dataSync() as Float32Array;
  tf.dispose([yT, lt, ...outs]);
  disposeConstants(rc);
  await Promise.all(devices.map((dv) => dv.close()));
  return { y, plan };
}

/** Plain per-token reference: softmax, top-k, a simple capacity loop per policy, the expert FFN in JS loops, × gate. */
export function referenceSwitch(config: Config, u: Float32Array, logits: Float32Array, step = 1): { y: Float32Array; kept: boolean[][] } {
  const d = config.model.d_model;
  const dff = config.moe.d_ff_expert || config.model.d_ff;
  const E = config.moe.n_experts;
  const K = config.moe.top_k;
  const N = u.length / d;
  const G = config.parallel.devices;
  const S = N / G;
  const probs: number[][] = [];
  for (let t = 0; t < N; t++) {
    const z = Array.from(logits.subarray(t * E, (t + 1) * E));
    const m = Math.max(...z);
    const ex = z.map((v) => Math.exp(v - m));
    const s = ex.reduce((a, b) => a + b, 0);
    probs.push(ex.map((v) => v / s));
  }
  const choice: number[][] = probs.map((p) => {
    const order = p.map((_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
    return order.slice(0, K);
  });
  const cap = config.moe.drop_tokens
    ? Math.min(S, Math.max(config.moe.min_capacity, Math.floor((config.moe.top_k * config.moe.capacity_factor * S) / E)))
    : Infinity;
  const kept: boolean[][] = choice.map((c) => c.map(() => false));
  for (let g = 0; g < G; g++) {
    const used = new Array<number>(E).fill(0);
    let order = Array.from({ length: S }, (_, i) => i);
    if (config.moe.drop_policy === 'random') order = Array.from(rngFor(config.seed, 'drop', step, 0, g).permutation(S)); // one stream per layer, step and group
    for (let c = 0; c < K; c++) {
      let ord = order;
      // batch-prioritised routing: every rank in the order of the token's largest routing weight
      if (config.moe.drop_policy === 'priority') ord = [...order].sort((a, b) => Math.max(...probs[g * S + b]!) - Math.max(...probs[g * S + a]!) || a - b);
      for (const i of ord) {
        const t = g * S + i;
        const e = choice[t]![c]!;
        if (used[e]! < cap) {
          used[e]!++;
          kept[t]![c] = true;
        }
      }
    }
  }
  const experts = Array.from({ length: E }, (_, e) => {
    const p = initExpertParams(config, 0, e);
    const get = (f: string) => p.get(`h.0.experts.${e}.${f}`)!.data;
    return { w1: get('w1'), b1: get('b1'), w2: get('w2'), b2: get('b2') };
  });
  const act = (a: number) => (config.model.activation === 'relu' ? Math.max(0, a) : 0.5 * a * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (a + 0.044715 * a ** 3))));
  const y = new Float32Array(N * d);
  for (let t = 0; t < N; t++) {
    const ps = choice[t]!.map((e) => probs[t]![e]!);
    const norm = K > 1 ? ps.reduce((a, b) => a + b, 0) : 1;
    choice[t]!.forEach((e, c) => {
      if (!kept[t]![c]) return;
      const gate = config.moe.scale_by_prob ? ps[c]! / norm : 1;
      const w = experts[e]!;
      const h = new Float64Array(dff);
      for (let j = 0; j < dff; j++) {
        let a = w.b1[j]!;
        for (let i = 0; i < d; i++) a += u[t * d + i]! * w.w1[i * dff + j]!;
        h[j] = act(a);
      }
      for (let i = 0; i < d; i++) {
        let o = w.b2[i]!;
        for (let j = 0; j < dff; j++) o += h[j]! * w.w2[j * d + i]!;
        y[t * d + i]! += gate * o;
      }
    });
  }
  return { y, kept };
}
