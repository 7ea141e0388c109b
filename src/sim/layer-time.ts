// What one Switch layer costs one stage per micro-batch, as stage.ts computes it and block.ts and project.ts read it.

/** One Switch layer of one stage, one micro-batch (µs; per GPU quantities are the pacing GPU's: the one whose all-to-all + experts take longest). */
export interface SwitchLayerTime {
  block: number;
  /** one all-to-all on the pacing GPU, and all of them (dispatch and combine, forward and backward; again forward with full recompute) */
  a2a_us: number;
  comm_us: number;
  /** of comm_us, what other micro-batches' compute does not hide (plan.overlap a2a), on the pacing GPU */
  exposed_comm_us: number;
  /** the pacing GPU's experts, forward and backward (and the recompute), and of it the forward */
  expert_us: number;
  expert_forward_us: number;
  /** slowest GPU's (all-to-all + experts) over the mean GPU's: 1 when routing is balanced */
  straggler_factor: number;
  drop_fraction: number;
  /** mean expert groups a token's copies go to (limited routing, fanout.ts; 1 without it) */
  groups_per_token: number;
  /** the stage's GPUs together, all all-to-alls of the micro-batch */
  bytes_intra_node: number;
  bytes_inter_node: number;
  /** per GPU of the stage: its all-to-alls' and its experts' µs (for the trace) */
  per_gpu: { a2a: number; expert: number }[];
}
