import { createHash } from 'node:crypto';
import type { Config } from '../../core/config/defaults.js';
import { Barrier } from '../../core/comm/barrier.js';
import { Engine } from '../coordinator/engine.js';
import { DeviceHost } from '../devices/device-host.js';
import type { DeviceState } from '../devices/messages.js';
import { initCoordinatorParams } from '../../core/model/params.js';
import { AdamW } from '../../core/optim/adamw.js';
import { SpmdExchange } from './exchange.js';
import { GradReduce } from './reduce.js';
import { Recorder, setProfile } from '../../core/instrument/recorder.js';
import type {
  OptimizerReport, ReplicaInit, ReplicaState, ShardEvalReport, ShardStepReport, ShardStepRequest,
} from './messages.js';

/**
 * One device of the spmd layout (runs in its worker thread): a replica of every dense weight with its
 * own AdamW state, the Engine over its shard of each batch (routing group = its rank), and the
 * experts it owns (a DeviceHost on the shared slots). It meets the other devices only at barriers.
 */
export class Replica {
  private readonly optimizer: AdamW;
  /** per dense parameter, its slice of the summed gradient (AdamW reads it there) */
  private readonly summed = new Map<string, Float32Array>();
  /** per generation of the shared rows, each dense parameter's slice of this device's row */
  private readonly rowViews: [string, Float32Array][][] = [[], []];

  private constructor(
    private readonly config: Config,
    readonly rank: number,
    readonly engine: Engine,
    readonly host: DeviceHost,
    private readonly exchange: SpmdExchange,
    private readonly reduce: GradReduce,
  ) {
    const t = config.train;
    this.optimizer = new AdamW({ beta1: t.beta1, beta2: t.beta2, eps: 1e-8, weightDecay: t.weight_decay });
    // each dense gradient becomes a view of this device's shared row, in parameter order (the session sized
    // the row from the same names), and its summed counterpart a view of the sum
    let at = 0;
    for (const [name, g] of engine.grads) {
      for (const gen of [0, 1]) this.rowViews[gen]!.push([name, reduce.ownRow(gen).subarray(at, at + g.length)]);
      this.summed.set(name, reduce.sum.subarray(at, at + g.length));
      at += g.length;
    }
    if (at !== reduce.sum.length)
      throw new Error(`spmd device ${rank}: ${at} dense gradient values, ${reduce.sum.length} in the shared row`);
    this.bindGradients();
  }

  /** the engine accumulates its dense gradients into the current generation's row */
  private bindGradients(): void {
    for (const [name, view] of this.rowViews[this.reduce.generation]!) this.engine.grads.set(name, view);
  }

  static async open(init: ReplicaInit): Promise<Replica> {
    const { config, rank } = init;
    const barrier = new Barrier(init.barrier, rank);
    const host = await DeviceHost.open(config, rank, init.switchBlocks, init.buffers);
    const exchange = new SpmdExchange(config, rank, host, init.buffers, init.counts, barrier);
    // every replica starts from the same seed: identical dense weights
    const engine = new Engine(config, initCoordinatorParams(config, init.vocabSize), exchange,
      { rank, count: config.parallel.devices });
    return new Replica(config, rank, engine, host, exchange, new GradReduce(init.reduce, rank, barrier));
  }

  /** `parallel.fault` (tests): this device crashes, hangs or throws at the start of that training step. */
  private async fault(step: number): Promise<void> {
    const f = this.config.parallel.fault;
    if (f.kind === 'slow' || f.device !== this.rank || f.step !== step) return; // slow: DeviceHost straggles
    if (f.kind === 'crash') process.exit(70); // in a worker thread this ends the thread only
    if (f.kind === 'hang') await new Promise(() => {}); // never answers, never reaches a barrier
    throw new Error('injected fault: handler threw');
  }

  /** the recorder of a profiled step, from its forward to the end of its optimizer step */
  private recorder?: Recorder;
  /** per Switch layer, the last training step's tokens per expert over every device */
  private stepLoad: number[][] = [];

  /** Forward and backward of this device's shard; with `lr`, the optimizer step at once after them. */
  async trainStep(req: ShardStepRequest): Promise<ShardStepReport> {
    const { x, y, batch, step } = req;
    await this.fault(step);
    this.recorder = req.profile ? new Recorder() : undefined;
    if (this.recorder) this.recorder.step = step;
    setProfile(this.recorder ?? null); // the Engine's and the exchange's spans go to it
    const t0 = performance.now();
    const r = await this.engine.trainStep(x, y, batch, step);
    const ms = performance.now() - t0;
    // router_entropy is computed when read, and posting the report would read it: not for a step nobody logs
    if (req.logged === false)
      for (const l of r.layers) Object.defineProperty(l, 'router_entropy', { value: NaN, enumerable: true, writable: true });
    // the step's load per expert over every device (aux-free balancing moves each replica's biases by it
    // alike): the counts each layer's last exchange shared, read before an evaluation could replace them
    this.stepLoad = this.exchange.load();
    const update = req.lr === undefined ? undefined : await this.step(req.lr, step);
    return { ce: r.ce, balance_loss: r.balance_loss, z_loss: r.z_loss, layers: r.layers, ms, update };
  }

  async evaluate(x: Int32Array, y: Int32Array, batch: number, step: number): Promise<ShardEvalReport> {
    const r = await this.engine.evaluate(x, y, batch, step);
    return { ce: r.ce, layers: r.layers };
  }

  /**
   * Dense gradients summed over replicas (each replica's loss is already ÷ D), the global norm over
   * the summed dense part and every device's experts (in all-reduce.ts's order, reduce.ts), then
   * AdamW here and on the experts. Replicas apply the same update to the same numbers: they stay identical.
   * One barrier (reduce.ts); no gradient is copied: the engine accumulates into the shared row and
   * AdamW reads the sum.
   */
  async step(lr: number, t: number): Promise<OptimizerReport> {
    const { params } = this.engine;
    const P = this.recorder;
    const lane = { kind: 'device', device: this.rank } as const;
    P?.at(undefined, undefined, undefined);
    // the dense gradients are already in this device's row of the shared buffer (the engine accumulated there)
    const experts = (await this.host.gradSquaredNorm()).value;
    const ta = performance.now();
    const ar = this.reduce.run(experts);
    P?.add({ name: 'allreduce', cat: 'comm', lane, ts: ta, dur: ar.ms,
      args: { barrier_wait_ms: ar.barrierMs, bytes: this.reduce.sum.byteLength } });
    const clip = this.config.train.grad_clip;
    const scale = clip > 0 && ar.gradNorm > clip ? clip / ar.gradNorm : 1;
    const t0 = performance.now();
    this.optimizer.step(params, this.summed, lr, scale, t);
    await this.host.step(lr, scale, t);
    this.engine.updateExpertBias(this.stepLoad);
    this.engine.refresh();
    this.bindGradients(); // the other generation's row, zeroed by the reduction
    const optimizerMs = performance.now() - t0;
    P?.add({ name: 'optimizer', cat: 'optimizer', lane, ts: t0, dur: optimizerMs });
    setProfile(null);
    this.recorder = undefined;
    return {
      grad_norm: ar.gradNorm, allreduce_ms: ar.ms, allreduce_wait_ms: ar.barrierMs, norm_wait_ms: ar.barrierMs,
      optimizer_ms: optimizerMs, ...(P ? { profile: { timeOrigin: performance.timeOrigin, spans: P.spans,
        traffic: P.traffic } } : {}),
    };
  }

  async state(dense: boolean): Promise<ReplicaState> {
    const experts = await this.host.state();
    if (!dense) return { experts };
    const rec = <T>(m: Map<string, T>) => Object.fromEntries(m) as Record<string, T>;
    return { dense: { params: rec(this.engine.params), m: rec(this.optimizer.state.m),
      v: rec(this.optimizer.state.v) }, experts };
  }

  async load(dense: DeviceState, experts: DeviceState): Promise<void> {
    for (const [k, p] of this.engine.params) {
      p.data.set(dense.params[k]!.data);
      if (dense.m[k] && dense.v[k]) {
        this.optimizer.state.m.set(k, Float32Array.from(dense.m[k]!));
        this.optimizer.state.v.set(k, Float32Array.from(dense.v[k]!));
      }
    }
    this.engine.refresh();
    await this.host.load(experts);
  }

  /** sha-256 of the dense weights and moments: replicas must agree bit for bit */
  digest(): string {
    const h = createHash('sha256');
    for (const [k, p] of this.engine.params) {
      h.update(k).update(new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength));
      for (const s of [this.optimizer.state.m.get(k), this.optimizer.state.v.get(k)])
        if (s) h.update(new Uint8Array(s.buffer, s.byteOffset, s.byteLength));
    }
    return h.digest('hex');
  }

  dispose(): void {
    this.engine.dispose();
    this.host.dispose();
  }
}
