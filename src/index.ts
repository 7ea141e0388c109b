/** switch-sim's public API: configure, train, sample, and the pieces a scaling experiment needs. */
export { DEFAULTS, type Config } from './config/defaults.js';
export { resolveConfig, validateConfig } from './config/load.js';
export { ConfigError } from './config/errors.js';
export { BackendError } from './backend/init.js';
export { DeviceError } from './experts/errors.js';
export { CheckpointError, InterruptedError } from './train/errors.js';
export { train, type TrainOptions, type TrainSummary, type StepReport } from './train/trainer.js';
export { sample, type SampleOptions, type SampleResult } from './train/sample.js';
export { Session } from './train/session.js';
export { planRouting, capacityFor, type RoutingPlan, type RoutingOptions } from './router/plan.js';
export type { LayerStats } from './coordinator/layer-stats.js';
export type { ExpertDevice } from './experts/device.js';
