import type { Config } from '../config/defaults.js';
import { allocateLayerBuffers, type LayerBuffers } from '../comm/buffers.js';
import { Engine } from '../coordinator/engine.js';
import { CheckpointError } from './errors.js';
import { createDevices } from '../experts/create.js';
import type { ExpertDevice } from '../experts/device.js';
import type { DeviceState, DeviceTiming } from '../experts/messages.js';
import { PROFILE } from '../profile/recorder.js';
import { initBackend } from '../backend/init.js';
import { fastestBackend } from '../backend/probe.js';
import { configParamCounts, initCoordinatorParams, initExpertShapes } from '../model/params.js';
import { switchBlocks } from '../model/stages.js';
import { capacityFor } from '../router/plan.js';
import { AdamW, sumSquares } from './adamw.js';
import type { CheckpointData } from './checkpoint.js';

/**
 * The layer buffers' shape [G, E, C_max]: G = devices routing groups of S tokens; C_max the largest
 * capacity any plan can have: training's, evaluation's, and generation's (one window of up to
 * seq_len ≤ S tokens, never dropped); S when tokens are never dropped.
 */
export function bufferShape(config: Config): { groups: number; capacity: number } {
  const G = config.parallel.devices;
  const S = (config.data.batch_size * config.data.seq_len) / G;
  const E = config.moe.n_experts;
  const m = config.moe;
  if (!m.drop_tokens) return { groups: G, capacity: S };
  const cap = Math.max(capacityFor(S, E, m.capacity_factor, m.min_capacity), capacityFor(S, E, m.eval_capacity_factor, m.min_capacity));
  return { groups: G, capacity: Math.max(cap, Math.min(S, config.data.seq_len)) };
}

/** With profiling on: what each device did, on its own lane. */
function deviceSpans(name: string, timings: DeviceTiming[]): void {
  const P = PROFILE;
  if (!P) return;
  timings.forEach((r, d) => {
    const ts = P.fromAbsolute(r.start, d);
    const end = P.fromAbsolute(r.end, d);
    P.add({ name, cat: 'optimizer', lane: { kind: 'device', device: d }, ts, dur: end - ts });
    P.deviceFree[d] = Math.max(P.deviceFree[d] ?? -Infinity, end);
  });
}

/** A model ready to train or sample: coordinator weights and optimizer here, experts on their devices. */
export class Session {
  private constructor(
    readonly config: Config,
    readonly engine: Engine,
    readonly devices: ExpertDevice[],
    readonly optimizer: AdamW,
    readonly buffers: LayerBuffers[],
  ) {}

  /** how the devices' backend was chosen, when parallel.backend is auto */
  backendChoice?: string;

  static async create(requested: Config, vocabSize: number): Promise<Session> {
    let config = requested;
    let backendChoice: string | undefined;
    if (requested.parallel.backend === 'auto') {
      const { choice, probes } = await fastestBackend();
      config = structuredClone(requested);
      config.parallel.backend = choice;
      backendChoice = `parallel.backend auto: ${choice} (expert forward+backward GFLOP/s: ${probes.map((p) => `${p.backend} ${p.available ? p.expert_gflops!.toFixed(1) : 'n/a'}`).join(', ')})`;
    }
    await initBackend(config.parallel.coordinator_backend);
    const blocks = switchBlocks(config);
    const { groups, capacity } = bufferShape(config);
    const buffers = blocks.map(() => allocateLayerBuffers(groups, config.moe.n_experts, capacity, config.model.d_model));
    const devices = await createDevices(config, blocks, buffers);
    const engine = new Engine(config, initCoordinatorParams(config, vocabSize), devices, buffers);
    const t = config.train;
    const session = new Session(config, engine, devices, new AdamW({ beta1: t.beta1, beta2: t.beta2, eps: 1e-8, weightDecay: t.weight_decay }), buffers);
    session.backendChoice = backendChoice;
    return session;
  }

  /** Global-norm clipping across the coordinator and every device, then one AdamW step everywhere. */
  async step(lr: number, t: number): Promise<{ gradNorm: number }> {
    // devices sum their squares while the coordinator sums its own
    PROFILE?.at(undefined, undefined, undefined);
    PROFILE?.begin('grad_norm');
    const pending = Promise.all(this.devices.map((d) => d.gradSquaredNorm()));
    const own = sumSquares(this.engine.grads.values());
    PROFILE?.end();
    PROFILE?.begin('wait', 'wait');
    const norms = await pending;
    PROFILE?.end();
    PROFILE?.begin('optimizer', 'optimizer');
    deviceSpans('grad_norm', norms);
    const gradNorm = Math.sqrt(own + norms.reduce((a, b) => a + b.value, 0));
    const clip = this.config.train.grad_clip;
    const scale = clip > 0 && gradNorm > clip ? clip / gradNorm : 1;
    // devices step their experts while the coordinator steps its weights
    const stepping = Promise.all(this.devices.map((d) => d.step(lr, scale, t)));
    this.optimizer.step(this.engine.params, this.engine.grads, lr, scale, t);
    PROFILE?.end();
    PROFILE?.begin('wait', 'wait');
    const stepped = await stepping;
    PROFILE?.end();
    PROFILE?.begin('refresh_weights');
    deviceSpans('optimizer', stepped);
    this.engine.refresh();
    this.engine.zeroGrads();
    PROFILE?.end();
    return { gradNorm };
  }

  /** Parameter counts, from the config: everything, and what one token activates (top-k experts per Switch layer). */
  paramCounts(): { total: number; activePerToken: number } {
    return configParamCounts(this.config, this.engine.params.get('wte')!.shape[0]!);
  }

  async snapshot(): Promise<CheckpointData['arrays']> {
    const arrays: CheckpointData['arrays'] = [];
    for (const [name, p] of this.engine.params) {
      arrays.push({ name, kind: 'param', shape: p.shape, data: p.data });
      const m = this.optimizer.state.m.get(name);
      const v = this.optimizer.state.v.get(name);
      if (m && v) arrays.push({ name, kind: 'm', shape: p.shape, data: m }, { name, kind: 'v', shape: p.shape, data: v });
    }
    for (const s of await Promise.all(this.devices.map((d) => d.state()))) {
      for (const [name, p] of Object.entries(s.params)) {
        arrays.push({ name, kind: 'param', shape: p.shape, data: p.data });
        if (s.m[name] && s.v[name]) arrays.push({ name, kind: 'm', shape: p.shape, data: s.m[name]! }, { name, kind: 'v', shape: p.shape, data: s.v[name]! });
      }
    }
    return arrays;
  }

  /** Every expert parameter's name and shape, as the devices own them. */
  private expertShapes(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const block of switchBlocks(this.config)) {
      for (let e = 0; e < this.config.moe.n_experts; e++) for (const [k, p] of initExpertShapes(this.config, block, e)) out.set(k, p);
    }
    return out;
  }

  /**
   * Restores weights and optimizer state; experts go to whichever device owns them now. Every
   * parameter must be there with its exact shape, and the checkpoint must hold nothing else.
   */
  async restore(arrays: CheckpointData['arrays']): Promise<void> {
    const byKind = (kind: string) => new Map(arrays.filter((a) => a.kind === kind).map((a) => [a.name, a]));
    const [params, ms, vs] = [byKind('param'), byKind('m'), byKind('v')];
    const shapes = new Map<string, number[]>([...[...this.engine.params].map(([k, p]) => [k, p.shape] as [string, number[]]), ...this.expertShapes()]);
    for (const [name, shape] of shapes) {
      const src = params.get(name);
      if (!src) throw new CheckpointError(`checkpoint lacks parameter ${name}: it was made for another model`);
      if (src.shape.join() !== shape.join()) throw new CheckpointError(`checkpoint parameter ${name} has shape [${src.shape}], the model needs [${shape}]`);
    }
    for (const name of params.keys()) {
      if (!shapes.has(name)) throw new CheckpointError(`checkpoint has parameter ${name}, which this model lacks: it was made for another model (check model.* and moe.n_experts)`);
    }
    for (const [name, p] of this.engine.params) {
      p.data.set(params.get(name)!.data);
      if (ms.has(name) && vs.has(name)) {
        this.optimizer.state.m.set(name, Float32Array.from(ms.get(name)!.data));
        this.optimizer.state.v.set(name, Float32Array.from(vs.get(name)!.data));
      }
    }
    const expertState: DeviceState = { params: {}, m: {}, v: {} };
    for (const [name, a] of params) if (name.includes('.experts.')) expertState.params[name] = { shape: a.shape, data: a.data };
    for (const [name, a] of ms) if (name.includes('.experts.')) expertState.m[name] = a.data;
    for (const [name, a] of vs) if (name.includes('.experts.')) expertState.v[name] = a.data;
    try {
      await Promise.all(this.devices.map((d) => d.load(expertState)));
    } catch (e) {
      throw new CheckpointError((e as Error).message);
    }
    this.engine.refresh();
  }

  async close(): Promise<void> {
    this.engine.dispose();
    // one at a time: Mesa's EGL does not survive two GPU devices torn down at once in two threads
    for (const d of this.devices) await d.close();
  }
}
