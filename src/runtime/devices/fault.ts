import type { Config } from '../../core/config/defaults.js';
import type { ExchangeRequest } from './device.js';
import { DeviceError } from './errors.js';
import type { FaultRequest } from './messages.js';

/**
 * `parallel.fault` (a test hook): device `fault.device` crashes, hangs or throws on its first exchange
 * of training step `fault.step` (the forward of Switch layer 0, micro-batch 0), whatever the transport.
 * (Kind `slow` is straggle's.)
 */
export function faultDue(
  config: Config, device: number, kind: 'forward' | 'backward' | 'touch', req: ExchangeRequest,
): FaultRequest['fault'] | undefined {
  const f = config.parallel.fault;
  if (f.kind === 'slow' || f.device !== device || kind !== 'forward' || !req.train) return undefined;
  return f.step === req.step && req.layer === 0 && req.micro === 0 ? f.kind : undefined;
}

/**
 * `parallel.fault.kind: slow` (a test and profiling hook): the device takes `delay_ms` longer on
 * every exchange from `fault.step` on, as a straggler GPU would. Blocks its own thread only.
 */
export function straggle(config: Config, device: number, step: number): void {
  const f = config.parallel.fault;
  if (f.kind !== 'slow' || f.device !== device || step < f.step || f.delay_ms <= 0) return;
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, f.delay_ms);
}

/**
 * An in-process device (`parallel.transport: local`) misbehaving as a worker thread would, seen from
 * the coordinator: a crash ends the device (every later request fails), a hang answers nothing until
 * parallel.timeout_ms has passed (then the device is given up), a throw fails that request only.
 * Each failure is a DeviceError naming the device, as the threads transport raises it.
 */
export class LocalFaults {
  /** why the device no longer answers, once it crashed or hung */
  private down?: string;

  constructor(
    private readonly config: Config,
    private readonly device: number,
    private readonly experts: number[],
  ) {}

  /** Fails a request to a device that crashed or hung earlier. */
  check(phase: string, layer?: number): void {
    if (this.down) throw new DeviceError(this.device, this.experts, phase, layer, this.down);
  }

  /** Before an exchange: injects the configured fault if it is due on this one. */
  async inject(kind: 'forward' | 'backward' | 'touch', req: ExchangeRequest): Promise<void> {
    this.check(kind, req.layer);
    const fault = faultDue(this.config, this.device, kind, req);
    if (!fault) return;
    const fail = (why: string) => new DeviceError(this.device, this.experts, kind, req.layer, why);
    if (fault === 'throw') throw fail('injected fault: handler threw');
    if (fault === 'crash') {
      this.down = 'the device exited earlier (injected crash)';
      throw fail('the device exited (injected crash)');
    }
    const ms = this.config.parallel.timeout_ms;
    await new Promise((resolve) => setTimeout(resolve, ms)); // the coordinator's deadline runs out
    this.down = `the device hung earlier (no answer within parallel.timeout_ms = ${ms} ms)`;
    throw fail(`no answer within parallel.timeout_ms = ${ms} ms (injected hang)`);
  }
}
