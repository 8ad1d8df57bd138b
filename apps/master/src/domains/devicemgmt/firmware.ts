/**
 * Firmware Update object (5) state and result (Core 1.1 §E.6): the numbers, and the server's view of
 * an update job as the device reports it through /5/0/3 (State) and /5/0/5 (Update Result).
 */
export const FW_STATE = { IDLE: 0, DOWNLOADING: 1, DOWNLOADED: 2, UPDATING: 3 } as const;
export type FirmwareState = (typeof FW_STATE)[keyof typeof FW_STATE];

export const FW_RESULT = {
  INITIAL: 0,
  SUCCESS: 1,
  NOT_ENOUGH_FLASH: 2,
  OUT_OF_RAM: 3,
  CONNECTION_LOST: 4,
  INTEGRITY_CHECK_FAILURE: 5,
  UNSUPPORTED_PACKAGE_TYPE: 6,
  INVALID_URI: 7,
  UPDATE_FAILED: 8,
  UNSUPPORTED_PROTOCOL: 9,
} as const;
export type FirmwareResult = (typeof FW_RESULT)[keyof typeof FW_RESULT];

export const FW_STATE_NAMES = ['idle', 'downloading', 'downloaded', 'updating'] as const;
export const FW_RESULT_NAMES = [
  'initial',
  'success',
  'not_enough_flash',
  'out_of_ram',
  'connection_lost',
  'integrity_check_failure',
  'unsupported_package_type',
  'invalid_uri',
  'update_failed',
  'unsupported_protocol',
] as const;

export const isFirmwareState = (n: unknown): n is FirmwareState => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 3;
export const isFirmwareResult = (n: unknown): n is FirmwareResult => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 9;

/** A firmware job as the server drives it: each step waits for what the device reports. */
export type FirmwareJobStatus = 'delivering' | 'downloading' | 'downloaded' | 'updating' | 'succeeded' | 'failed';

/**
 * Device state transitions the specification allows (Figure E.6.1). Anything else reported is kept
 * as the device's word but marks the job failed: the server never trusts a jump to success.
 */
const ALLOWED: ReadonlySet<string> = new Set([
  '0>0', // result changes while idle (a failure, or the reset after success)
  '0>1', // Package URI written: download starts
  '0>2', // Package written directly (push)
  '1>0', // download failed (result 2..9) or cancelled
  '1>1',
  '1>2', // downloaded and (for TIPS) verified
  '2>0', // cancelled / verification failed
  '2>2',
  '2>3', // Update executed
  '3>0', // update failed (result 8) or succeeded (result 1) and back to idle
  '3>2', // update failed, package kept
  '3>3',
]);

export function transitionAllowed(from: FirmwareState, to: FirmwareState): boolean {
  return ALLOWED.has(`${from}>${to}`);
}

/**
 * Folds one report (state, result) into the job's status. `sawUpdating` is whether the job has seen
 * state 3 (Updating), so a result 1 only counts after the update was executed.
 */
export function nextJobStatus(current: FirmwareJobStatus, prevState: FirmwareState | null, state: FirmwareState, result: FirmwareResult): FirmwareJobStatus {
  if (current === 'succeeded' || current === 'failed') return current;
  if (prevState !== null && !transitionAllowed(prevState, state)) return 'failed';
  if (result >= FW_RESULT.NOT_ENOUGH_FLASH) return 'failed';
  if (result === FW_RESULT.SUCCESS) return current === 'updating' || prevState === FW_STATE.UPDATING ? 'succeeded' : 'failed';
  switch (state) {
    case FW_STATE.DOWNLOADING:
      return 'downloading';
    case FW_STATE.DOWNLOADED:
      return 'downloaded';
    case FW_STATE.UPDATING:
      return 'updating';
    default:
      return current;
  }
}
