/**
 * The anti-replay sliding window of RFC 6347 §4.1.2.6 (64 records), and the record state an established
 * session shares with the native fast path (native/tips_dtls.c): the next write sequence number of
 * epoch 1, the read window and the last activity live in one 32-byte buffer both sides read and write
 * (one thread: the C code runs in a uv_poll callback on the main thread), so neither reuses a sequence
 * number or accepts a record the other has seen.
 */
export const REPLAY_WINDOW = 64;
export const RECORD_STATE_BYTES = 32;

/** f64 @0 next write sequence (epoch 1) · f64 @8 window top (-1: none) · u32 @16/@20 window bits 0..31/32..63 · f64 @24 last activity (ms). */
export class RecordState {
  readonly bytes = new Uint8Array(RECORD_STATE_BYTES);
  readonly f64 = new Float64Array(this.bytes.buffer, 0, 4);
  readonly u32 = new Uint32Array(this.bytes.buffer, 0, 8);

  constructor() {
    this.f64[1] = -1;
    this.f64[3] = Date.now();
  }
}

export class ReplayWindow {
  private readonly f: Float64Array;
  private readonly u: Uint32Array;

  constructor(state: RecordState = new RecordState()) {
    this.f = state.f64;
    this.u = state.u32;
  }

  /** Empties the window (a new epoch). */
  reset(): void {
    this.f[1] = -1;
    this.u[4] = 0;
    this.u[5] = 0;
  }

  /** True if `seq` is new and inside the window (check before decrypting). */
  check(seq: number): boolean {
    const top = this.f[1] as number;
    if (seq > top) return true;
    const d = top - seq;
    if (d >= REPLAY_WINDOW) return false;
    return d < 32 ? (((this.u[4] as number) >>> d) & 1) === 0 : (((this.u[5] as number) >>> (d - 32)) & 1) === 0;
  }

  /** Marks `seq` received (call only after the record authenticated). */
  accept(seq: number): void {
    const top = this.f[1] as number;
    const lo = this.u[4] as number;
    const hi = this.u[5] as number;
    if (seq > top) {
      const shift = seq - top;
      if (shift >= REPLAY_WINDOW) {
        this.u[5] = 0;
        this.u[4] = 1;
      } else if (shift >= 32) {
        this.u[5] = shift === 32 ? lo : (lo << (shift - 32)) >>> 0;
        this.u[4] = 1;
      } else {
        this.u[5] = ((hi << shift) | (lo >>> (32 - shift))) >>> 0;
        this.u[4] = ((lo << shift) | 1) >>> 0;
      }
      this.f[1] = seq;
      return;
    }
    const d = top - seq;
    if (d >= REPLAY_WINDOW) return;
    if (d < 32) this.u[4] = (lo | (1 << d)) >>> 0;
    else this.u[5] = (hi | (1 << (d - 32))) >>> 0;
  }
}
