/** A device failed: names the device, its experts, the Switch layer and the phase. */
export class DeviceError extends Error {
  override name = 'DeviceError';
  constructor(
    readonly device: number,
    readonly experts: number[],
    readonly phase: string,
    readonly layer: number | undefined,
    reason: string,
  ) {
    super(
      `device ${device} (experts ${experts.join(',')}) failed during ${phase}` +
        `${layer === undefined ? '' : ` of Switch layer ${layer}`}: ${reason}`,
    );
  }
}

/** A checkpoint that cannot be used: missing, corrupt, or made for another model. */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/** Training was interrupted (Ctrl-C) after saving a checkpoint. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}
