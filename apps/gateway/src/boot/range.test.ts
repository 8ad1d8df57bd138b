import { describe, expect, it } from 'vitest';
import { decideRange } from './range.ts';

describe('T13 A2 single byte ranges for boot files and Glazes (RFC 9110 §14)', () => {
  it('answers first-last, open-ended and suffix ranges, clamped to the size', () => {
    expect(decideRange(undefined, 100)).toEqual({ kind: 'full' });
    expect(decideRange('bytes=0-9', 100)).toEqual({ kind: 'partial', start: 0, end: 9 });
    expect(decideRange('bytes=90-', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(decideRange('bytes=90-500', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(decideRange('bytes=-10', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(decideRange('bytes=-500', 100)).toEqual({ kind: 'partial', start: 0, end: 99 });
    expect(decideRange('bytes=99-99', 100)).toEqual({ kind: 'partial', start: 99, end: 99 });
  });

  it('416 for a start at or past the end and for an empty suffix; ignores what it does not understand', () => {
    expect(decideRange('bytes=100-', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(decideRange('bytes=-0', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(decideRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    for (const h of ['bytes=0-1,5-6', 'items=0-1', 'bytes=5-3', 'bytes=-', 'bytes=a-b', '']) expect(decideRange(h, 100), h).toEqual({ kind: 'full' });
  });
});
