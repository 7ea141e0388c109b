/**
 * The backends a device can compute on, as `switch-sim backends` probes them (a module without tfjs, for the
 * CLI's option parsing).
 */
export type Probed = 'wasm' | 'cpu' | 'webgpu' | 'gpujs' | 'tensorflow';
export const PROBED: Probed[] = ['wasm', 'cpu', 'webgpu', 'gpujs', 'tensorflow'];
