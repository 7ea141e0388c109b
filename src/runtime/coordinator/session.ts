import type { Config } from '../../core/config/defaults.js';
import { allocateLayerBuffers, type LayerBuffers } from '../../core/comm/buffers.js';
import { Engine, type StepResult } from './engine.js';
import { SwitchDispatcher } from './switch-dispatch.js';
import { CheckpointError } from './restore.js';
import { DeviceError } from '../devices/errors.js';
import { createDevices } from '../devices/create.js';
import type { ExpertDevice } from '../devices/device.js';
import type { DeviceMemory, DeviceTiming } from '../devices/messages.js';
import { PROFILE } from '../../core/instrument/recorder.js';
import { initBackend } from '../../core/backend/init.js';
import { fastestBackend } from '../devices/probe.js';
import { configParamCounts, initCoordinatorParams } from '../../core/model/params.js';
import { switchBlocks } from '../../core/model/stages.js';
import { expertCapacity } from '../../core/router/capacity.js';
import { tokensPerGroup } from '../../core/router/group-tokens.js';
import { AdamW, sumSquares } from '../../core/optim/adamw.js';
import type { CheckpointData } from './restore.js';
import { expertShapes, splitCheckpoint, stateArrays } from './restore.js';

/**
 * The layer buffers' shape [G, E, C_max]: G = devices routing groups of S tokens; C_max the largest
 * capacity any plan can have: training's, evaluation's, and generation's (one window of up to
 * seq_len ≤ S tokens, never dropped); S when tokens are never dropped.
 */
export function bufferShape(config: Config): { groups: number; capacity: number } {
  const G = config.parallel.devices;
  const S = tokensPerGroup(config);
  const E = config.moe.n_experts;
  const m = config.moe;
  if (!m.drop_tokens) return { groups: G, capacity: S };
  const at = (capacityFactor: number) =>
    expertCapacity({ tokensPerGroup: S, experts: E, topK: m.top_k, capacityFactor, minCapacity: m.min_capacity });
  const cap = Math.max(at(m.capacity_factor), at(m.eval_capacity_factor));
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

/**
 * What the trainer knows of a step before it runs. Given to trainStep, a session may take the optimizer
 * step (at `lr`) as soon as the gradients are known, and step() with the same lr and t then only reports
 * it (spmd: one request to the devices a step); `logged: false` lets it skip figures only a logged step
 * writes (router_entropy).
 */
export interface StepPlan {
  lr: number;
  logged: boolean;
}

/** What the training loop needs of a model, whatever the layout (coordinator here, spmd in src/spmd/session.ts). */
export interface TrainingSession {
  readonly config: Config;
  /** how the devices' backend was chosen, when parallel.backend is auto */
  backendChoice?: string;
  trainStep(x: Int32Array, y: Int32Array, batch: number, step: number, plan?: StepPlan): Promise<StepResult>;
  evaluate(x: Int32Array, y: Int32Array, batch: number, step: number): Promise<{ ce: number }>;
  /** clip by the global norm, one AdamW step everywhere; layout-specific figures go to the metrics line */
  step(lr: number, t: number): Promise<{ gradNorm: number; metrics?: Record<string, number> }>;
  memory(): Promise<DeviceMemory[]>;
  paramCounts(): { total: number; activePerToken: number };
  snapshot(): Promise<CheckpointData['arrays']>;
  restore(arrays: CheckpointData['arrays']): Promise<void>;
  close(): Promise<void>;
}

/** `parallel.backend: auto`: the fastest backend the probe finds, and a line saying so. */
export async function resolveBackend(requested: Config): Promise<{ config: Config; backendChoice?: string }> {
  if (requested.parallel.backend !== 'auto') return { config: requested };
  const { choice, probes } = await fastestBackend();
  const config = structuredClone(requested);
  config.parallel.backend = choice;
  return { config, backendChoice: `parallel.backend auto: ${choice} (expert forward+backward GFLOP/s: ` +
    `${probes.map((p) => `${p.backend} ${p.available ? p.expert_gflops!.toFixed(1) : 'n/a'}`).join(', ')})` };
}

/** A model ready to train or sample: coordinator weights and optimizer here, experts on their devices. */
export class Session implements TrainingSession {
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
    const { config, backendChoice } = await resolveBackend(requested);
    await initBackend(config.parallel.coordinator_backend);
    const blocks = switchBlocks(config);
    const { groups, capacity } = bufferShape(config);
    const buffers = blocks.map(() => allocateLayerBuffers(groups, config.moe.n_experts, capacity,
      config.model.d_model));
    const devices = await createDevices(config, blocks, buffers);
    const engine = new Engine(config, initCoordinatorParams(config, vocabSize),
      new SwitchDispatcher(config, devices, buffers));
    const t = config.train;
    const session = new Session(config, engine, devices,
      new AdamW({ beta1: t.beta1, beta2: t.beta2, eps: 1e-8, weightDecay: t.weight_decay }), buffers);
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
    this.engine.updateExpertBias(this.load);
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
    const rec = <T>(m: Map<string, T>) => Object.fromEntries(m) as Record<string, T>;
    const dense = { params: rec(this.engine.params), m: rec(this.optimizer.state.m), v: rec(this.optimizer.state.v) };
    return [dense, ...(await Promise.all(this.devices.map((d) => d.state())))].flatMap(stateArrays);
  }

  /**
   * Restores weights and optimizer state; experts go to whichever device owns them now. Every
   * parameter must be there with its exact shape, and the checkpoint must hold nothing else.
   */
  async restore(arrays: CheckpointData['arrays']): Promise<void> {
    const denseShapes = new Map([...this.engine.params].map(([k, p]) => [k, p.shape] as [string, number[]]));
    const { dense, experts } = splitCheckpoint(arrays, denseShapes, expertShapes(this.config));
    for (const [name, p] of this.engine.params) {
      p.data.set(dense.params[name]!.data);
      if (dense.m[name] && dense.v[name]) {
        this.optimizer.state.m.set(name, Float32Array.from(dense.m[name]!));
        this.optimizer.state.v.set(name, Float32Array.from(dense.v[name]!));
      }
    }
    try {
      await Promise.all(this.devices.map((d) => d.load(experts)));
    } catch (e) {
      // a device that crashed or hung while loading is a device failure (exit 1), not a bad checkpoint
      throw e instanceof DeviceError ? e : new CheckpointError((e as Error).message);
    }
    this.engine.refresh();
  }

  async trainStep(x: Int32Array, y: Int32Array, batch: number, step: number): Promise<StepResult> {
    const r = await this.engine.trainStep(x, y, batch, step);
    this.load = r.layers.map((l) => l.tokens_per_expert);
    return r;
  }

  /** the last training step's tokens per expert, per Switch layer (for aux-free balancing) */
  private load: number[][] = [];

  async evaluate(x: Int32Array, y: Int32Array, batch: number, step: number): Promise<{ ce: number }> {
    return this.engine.evaluate(x, y, batch, step);
  }

  memory(): Promise<DeviceMemory[]> {
    return Promise.all(this.devices.map((d) => d.memory()));
  }

  async close(): Promise<void> {
    this.engine.dispose();
    // one at a time: Mesa's EGL does not survive two GPU devices torn down at once in two threads
    for (const d of this.devices) await d.close();
  }
}
