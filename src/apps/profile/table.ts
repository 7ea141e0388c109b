import type { ProfileReport } from './run.js';

const ms = (x: number) => x.toFixed(3).padStart(9);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`.padStart(7);

/** The terminal summary of a profile: the dispatch-overhead line on top, then every phase sorted by time. */
export function profileTable(r: ProfileReport): string {
  const step = r.split.step_ms;
  const pack = r.critical_path.reduce((a, c) => a + c.pack_ms, 0) / Math.max(1, r.critical_path.length);
  const unpack = r.critical_path.reduce((a, c) => a + c.unpack_ms, 0) / Math.max(1, r.critical_path.length);
  const lines = [
    `dispatch overhead ${r.dispatch_overhead.ms_per_step.toFixed(3)} ms/step = ` +
      `${(100 * r.dispatch_overhead.fraction).toFixed(2)}% of a ${step.toFixed(2)} ms step ` +
      `(pack ${pack.toFixed(3)}, unpack ${unpack.toFixed(3)}, waiting with no device computing ` +
      `${(r.dispatch_overhead.ms_per_step - pack - unpack).toFixed(3)})`,
    `critical path: coordinator compute ${r.split.coordinator_compute_ms.toFixed(2)} ms + dispatch overhead ` +
      `${r.split.dispatch_overhead_ms.toFixed(2)} ms ` +
      `+ exposed expert compute ${r.split.exposed_expert_ms.toFixed(2)} ms = ` +
      `${(r.split.coordinator_compute_ms + r.split.dispatch_overhead_ms + r.split.exposed_expert_ms).toFixed(2)} ` +
      `ms per step`,
    '',
    `${'phase'.padEnd(26)} ${'where'.padEnd(12)} ${'mean ms'.padStart(9)} ${'p50 ms'.padStart(9)} ` +
      `${'p95 ms'.padStart(9)} ${'% step'.padStart(7)}`,
    ...r.phases.filter((p) => p.total_ms > 0).map((p) =>
      `${p.phase.padEnd(26)} ${(p.where === 'coordinator' ? p.where : `${p.where} mean`).padEnd(12)} ` +
        `${ms(p.mean_ms)} ${ms(p.p50_ms)} ${ms(p.p95_ms)} ${pct(p.mean_ms / step)}`),
    `(device and link phases: the mean over the ${r.devices.length} devices, per step; each device's own below)`,
    '',
    ...r.devices.map((d) => `device ${d.device}: busy ${d.busy_ms_per_step.toFixed(2)} ms/step ` +
      `(${(100 * d.busy_fraction).toFixed(1)}%), idle ${d.idle_ms_per_step.toFixed(2)} ms/step; ` +
      Object.entries(d.phases).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')),
    ...Object.entries(r.outside_steps).map(([k, v]) => `${k}: ${v.toFixed(1)} ms (outside the steps)`),
    `profiler: ${r.instrumentation.step_ms_on.toFixed(2)} ms/step on vs ${r.instrumentation.step_ms_off.toFixed(2)} ` +
      `ms/step off, interleaved ` +
      `(measured ${(100 * r.instrumentation.measured_overhead_fraction).toFixed(1)}%); ` +
      `${r.instrumentation.spans_per_step.toFixed(0)} spans/step × ` +
      `${r.instrumentation.ns_per_span.toFixed(0)} ns = ` +
      `${(100 * r.instrumentation.estimated_overhead_fraction).toFixed(2)}% of a step (estimated); off: ` +
      `one null check per site`,
  ];
  return `${lines.join('\n')}\n`;
}
