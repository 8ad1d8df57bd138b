/** The anti-replay sliding window of RFC 6347 §4.1.2.6 (64 records), one per epoch. */
export const REPLAY_WINDOW = 64;

export class ReplayWindow {
  private top = -1; // highest sequence number accepted
  // bit i set: top - i was received; bits 0..31 in `lo`, 32..63 in `hi` (two uint32s, no BigInt per record)
  private lo = 0;
  private hi = 0;

  /** True if `seq` is new and inside the window (check before decrypting). */
  check(seq: number): boolean {
    if (seq > this.top) return true;
    const d = this.top - seq;
    if (d >= REPLAY_WINDOW) return false;
    return d < 32 ? ((this.lo >>> d) & 1) === 0 : ((this.hi >>> (d - 32)) & 1) === 0;
  }

  /** Marks `seq` received (call only after the record authenticated). */
  accept(seq: number): void {
    if (seq > this.top) {
      const shift = seq - this.top;
      if (shift >= REPLAY_WINDOW) {
        this.hi = 0;
        this.lo = 1;
      } else if (shift >= 32) {
        this.hi = (this.lo << (shift - 32)) >>> 0;
        this.lo = 1;
      } else {
        this.hi = ((this.hi << shift) | (this.lo >>> (32 - shift))) >>> 0;
        this.lo = ((this.lo << shift) | 1) >>> 0;
      }
      this.top = seq;
      return;
    }
    const d = this.top - seq;
    if (d >= REPLAY_WINDOW) return;
    if (d < 32) this.lo = (this.lo | (1 << d)) >>> 0;
    else this.hi = (this.hi | (1 << (d - 32))) >>> 0;
  }
}
