import { Piscina } from 'piscina';
import { workerStart } from '../threads/worker-file.js';
import type { Config } from '../../core/config/defaults.js';
import { Barrier, allocateBarrier } from '../../core/comm/barrier.js';
import { allocateLayerBuffers, type LayerBuffers } from '../../core/comm/buffers.js';
import type { StepResult } from '../coordinator/engine.js';
import { prepareDawnEnvironment } from '../../core/backend/dawn.js';
import { BackendError } from '../../core/backend/errors.js';
import { expertsOf } from '../../core/router/placement.js';
import { DeviceError } from '../devices/errors.js';
import type { DeviceMemory } from '../devices/messages.js';
import { configParamCounts, initCoordinatorParams, trainedNames } from '../../core/model/params.js';
import { switchBlocks } from '../../core/model/stages.js';
import type { CheckpointData } from '../coordinator/restore.js';
import { CheckpointError } from '../coordinator/restore.js';
import { expertShapes, splitCheckpoint, stateArrays } from '../coordinator/restore.js';
import { bufferShape, resolveBackend, type StepPlan, type TrainingSession } from '../coordinator/session.js';
import { mergeShardLayers } from './merge.js';
import { allocateReduce } from './reduce.js';
import { PROFILE, type Recorder } from '../../core/instrument/recorder.js';
import type { OptimizerReport, ReplicaRequest, ReplicaState, ShardEvalReport, ShardStepReport } from './messages.js';

/**
 * `parallel.layout: spmd` from the main thread: D device threads, each a replica of the dense model
 * with its experts, meeting at barriers in shared memory. The main thread only hands out shards,
 * collects losses and metrics, and reads and writes checkpoints (dense weights from replica 0,
 * experts from each device: the coordinator layout's names, so checkpoints go either way).
 * A device that crashes, throws or hangs aborts the barrier, so that no other device waits forever,
 * and the error names it.
 */
export class SpmdSession implements TrainingSession {
  backendChoice?: string;
  private broken = false;

  private constructor(
    readonly config: Config,
    private readonly pools: Piscina[],
    private readonly barrier: Barrier,
    private readonly denseShapes: Map<string, number[]>,
    private readonly vocabSize: number,
  ) {}

  static async create(requested: Config, vocabSize: number): Promise<SpmdSession> {
    const { config, backendChoice } = await resolveBackend(requested);
    const D = config.parallel.devices;
    const E = config.moe.n_experts;
    const blocks = switchBlocks(config);
    const { groups, capacity } = bufferShape(config);
    const buffers: LayerBuffers[] = blocks.map(() => allocateLayerBuffers(groups, E, capacity, config.model.d_model));
    const dense = initCoordinatorParams(config, vocabSize);
    const barrierBuffer = allocateBarrier(D);
    const shared = {
      buffers, switchBlocks: blocks, counts: blocks.map(() => new SharedArrayBuffer(D * E * 4)),
      barrier: barrierBuffer,
      reduce: allocateReduce(D, trainedNames(dense).reduce((a, n) => a + dense.get(n)!.data.length, 0)),
    };
    // before the threads start: they copy the environment
    if (config.parallel.backend === 'gpujs') prepareDawnEnvironment();
    const start = await workerStart(config.parallel.backend, config.parallel.coordinator_backend);
    const pools = Array.from({ length: D },
      () => new Piscina({ ...start, name: 'replica', minThreads: 1, maxThreads: 1,
        idleTimeout: Number.MAX_SAFE_INTEGER }));
    const session = new SpmdSession(config, pools, new Barrier(barrierBuffer),
      new Map([...dense].map(([k, p]) => [k, p.shape])), vocabSize);
    session.backendChoice = backendChoice;
    try {
      await session.all('init', () => ({ kind: 'init', config, vocabSize, ...shared }), (d) => ({ rank: d }),
        Math.max(60_000, config.parallel.timeout_ms));
    } catch (e) {
      await session.close();
      // a backend that cannot start is bad input (exit 2)
      const why = /(parallel\.backend .*)$/.exec((e as Error).message);
      throw why ? new BackendError(why[1]!) : e;
    }
    return session;
  }

  /**
   * One request to every device at once, with the deadline parallel.timeout_ms. The first real
   * failure (a crash, a throw, or a device that did not answer: the one the barrier waits for) aborts
   * the barrier so that the others return, and becomes a DeviceError naming that device.
   */
  private async all<T>(phase: string, base: (d: number) => Partial<ReplicaRequest>,
    extra: (d: number) => object = () => ({}), deadline = this.config.parallel.timeout_ms): Promise<T[]> {
    if (this.broken)
      throw new DeviceError(0, expertsOf(this.config, 0), phase, undefined,
        'the devices were stopped by an earlier failure');
    const aborts = this.pools.map(() => new AbortController());
    let first: { device: number; why: string } | undefined;
    const fail = (device: number, why: string) => {
      first ??= { device, why };
      this.barrier.abort();
    };
    const pending = this.pools.map(() => true);
    const timer = setTimeout(() => {
      const late = this.barrier.laggard() ?? pending.findIndex((p) => p);
      fail(late, `no answer within ${deadline} ms (parallel.timeout_ms)`);
      for (const a of aborts) a.abort(new Error('stopped'));
    }, deadline);
    const runs = this.pools.map((pool, d) =>
      pool.run({ ...base(d), ...extra(d) }, { signal: aborts[d]!.signal }).then(
        (r) => ((pending[d] = false), r as T),
        (e: Error) => {
          pending[d] = false;
          if (!/BarrierAbortedError|aborted: another device failed/.test(`${e.name} ${e.message}`)) fail(d, e.message);
          throw e;
        },
      ));
    const settled = await Promise.allSettled(runs);
    clearTimeout(timer);
    if (first || settled.some((s) => s.status === 'rejected')) {
      this.broken = true;
      const f = first ?? { device: settled.findIndex((s) => s.status === 'rejected'), why: 'failed' };
      throw new DeviceError(f.device, expertsOf(this.config, f.device), phase, undefined, f.why);
    }
    return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  }

  /** device d's shard: sequences [d·B/D, (d+1)·B/D) */
  private shard(a: Int32Array, d: number): Int32Array {
    const per = a.length / this.config.parallel.devices;
    return a.slice(d * per, (d + 1) * per);
  }

  async trainStep(x: Int32Array, y: Int32Array, batch: number, step: number, plan?: StepPlan): Promise<StepResult> {
    const per = batch / this.config.parallel.devices;
    const profile = PROFILE !== null;
    // with the plan, the optimizer step follows at once on every device: one request a step, not two
    const r = await this.all<ShardStepReport>('training step',
      (d) => ({ kind: 'train', x: this.shard(x, d), y: this.shard(y, d), batch: per, step, profile,
        ...(plan ? { lr: plan.lr, logged: plan.logged } : {}) }));
    const mean = (f: (s: ShardStepReport) => number) => r.reduce((a, s) => a + f(s), 0) / r.length;
    const [ce, balance, z] = [mean((s) => s.ce), mean((s) => s.balance_loss), mean((s) => s.z_loss)];
    const layers = mergeShardLayers(r.map((s) => s.layers));
    this.taken = plan ? { lr: plan.lr, t: step, reports: r.map((s) => s.update!) } : undefined;
    return { loss: ce + balance + z, ce, balance_loss: balance, z_loss: z, layers };
  }

  /** the optimizer step the devices took right after the last training step (trainStep with a plan) */
  private taken?: { lr: number; t: number; reports: OptimizerReport[] };

  async evaluate(x: Int32Array, y: Int32Array, batch: number, step: number): Promise<{ ce: number }> {
    const per = batch / this.config.parallel.devices;
    const r = await this.all<ShardEvalReport>('evaluation',
      (d) => ({ kind: 'eval', x: this.shard(x, d), y: this.shard(y, d), batch: per, step }));
    return { ce: r.reduce((a, s) => a + s.ce, 0) / r.length };
  }

  async step(lr: number, t: number): Promise<{ gradNorm: number; metrics: Record<string, number> }> {
    const taken = this.taken;
    this.taken = undefined;
    if (taken && (taken.lr !== lr || taken.t !== t))
      throw new Error(`spmd: the devices stepped at lr ${taken.lr} (step ${taken.t}), asked for lr ${lr} (step ${t})`);
    const r = taken?.reports
      ?? await this.all<OptimizerReport>('optimizer step', () => ({ kind: 'step', lr, t }));
    if (PROFILE) r.forEach((s, d) => addDeviceProfile(PROFILE!, d, s.profile));
    const mean = (f: (s: OptimizerReport) => number) => +(r.reduce((a, s) => a + f(s), 0) / r.length).toFixed(3);
    return {
      gradNorm: r[0]!.grad_norm, // every device computed the same sum in the same order
      metrics: { allreduce_ms: mean((s) => s.allreduce_ms), allreduce_wait_ms: mean((s) => s.allreduce_wait_ms),
        norm_wait_ms: mean((s) => s.norm_wait_ms), optimizer_ms: mean((s) => s.optimizer_ms) },
    };
  }

  memory(): Promise<DeviceMemory[]> {
    return this.all<DeviceMemory>('memory', () => ({ kind: 'memory' }));
  }

  /** sha-256 of each replica's dense weights and moments (tests: replicas stay identical) */
  digests(): Promise<string[]> {
    return this.all<string>('digest', () => ({ kind: 'digest' }));
  }

  paramCounts(): { total: number; activePerToken: number } {
    return configParamCounts(this.config, this.vocabSize);
  }

  async snapshot(): Promise<CheckpointData['arrays']> {
    const states = await this.all<ReplicaState>('state', (d) => ({ kind: 'state', dense: d === 0 }));
    return [states[0]!.dense!, ...states.map((s) => s.experts)].flatMap(stateArrays);
  }

  async restore(arrays: CheckpointData['arrays']): Promise<void> {
    const { dense, experts } = splitCheckpoint(arrays, this.denseShapes, expertShapes(this.config));
    try {
      await this.all('load', () => ({ kind: 'load', dense, experts }));
    } catch (e) {
      // a device that crashed or hung while loading is a device failure (exit 1), not a bad checkpoint
      throw e instanceof DeviceError ? e : new CheckpointError((e as Error).message);
    }
  }

  async close(): Promise<void> {
    // devices that still answer free their backends, one at a time (Mesa's EGL: see Session.close)
    if (!this.broken) {
      for (const pool of this.pools)
        await pool.run({ kind: 'close' }, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
    }
    this.barrier.abort(); // nobody may stay blocked in a barrier while its thread is torn down
    await Promise.all(this.pools.map((p) => p.destroy()));
  }
}

/**
 * A profiled step's spans from device d, onto the main recorder: the dense engine's spans (recorded
 * on the worker's "coordinator" lane) go to the device's compute lane, the exchange's stay on its link
 * lane; times move from the worker's clock to the main thread's (absolute time is shared).
 */
function addDeviceProfile(P: Recorder, d: number, p: OptimizerReport['profile']): void {
  if (!p) return;
  const ts = (local: number) => P.fromAbsolute(p.timeOrigin + local);
  for (const s of p.spans)
    P.spans.push({ ...s, ts: ts(s.ts), lane: s.lane.kind === 'coordinator' ? { kind: 'device', device: d } : s.lane });
  for (const t of p.traffic) P.traffic.push({ ...t, ts: ts(t.ts) });
}
