/**
 * A device failed: names the device, its experts, the Switch layer and the phase. Raised by the
 * device side (a worker that crashed, hung past its deadline or threw); callers decide what it means.
 */
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
