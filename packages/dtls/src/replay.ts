/** The anti-replay sliding window of RFC 6347 §4.1.2.6 (64 records), one per epoch. */
export const REPLAY_WINDOW = 64;

export class ReplayWindow {
  private top = -1; // highest sequence number accepted
  private bitmap = 0n; // bit i set: top - i was received

  /** True if `seq` is new and inside the window (check before decrypting). */
  check(seq: number): boolean {
    if (seq > this.top) return true;
    const d = this.top - seq;
    if (d >= REPLAY_WINDOW) return false;
    return ((this.bitmap >> BigInt(d)) & 1n) === 0n;
  }

  /** Marks `seq` received (call only after the record authenticated). */
  accept(seq: number): void {
    if (seq > this.top) {
      const shift = seq - this.top;
      this.bitmap = shift >= REPLAY_WINDOW ? 1n : ((this.bitmap << BigInt(shift)) | 1n) & ((1n << BigInt(REPLAY_WINDOW)) - 1n);
      this.top = seq;
    } else {
      this.bitmap |= 1n << BigInt(this.top - seq);
    }
  }
}
