import { describe, expect, it } from 'vitest';
import { InstallerError } from './errors.ts';
import { MARKER_SIZE } from './marker.ts';
import { HEAD_SIZE, planWrite } from './plan.ts';

const MiB = 1024 * 1024;

describe('T13 Phase 1: the power-safe write plan (A6)', () => {
  it('body first (all but the first MiB), then the head, then the whole image verified; marker at the end of the disk', () => {
    const p = planWrite(100 * MiB, 10 * MiB + 7);
    expect(p.markerOffset).toBe(100 * MiB - MARKER_SIZE);
    expect(p.body).toEqual({ offset: HEAD_SIZE, length: 9 * MiB + 7 });
    expect(p.head).toEqual({ offset: 0, length: HEAD_SIZE });
    expect(p.verify).toEqual({ offset: 0, length: 10 * MiB + 7 });
    // body and head together are the image, without overlap
    expect(p.head.offset + p.head.length).toBe(p.body.offset);
    expect(p.body.offset + p.body.length).toBe(10 * MiB + 7);
  });

  it('an image smaller than a MiB is all head', () => {
    const p = planWrite(10 * MiB, 4096);
    expect(p.head).toEqual({ offset: 0, length: 4096 });
    expect(p.body).toEqual({ offset: 4096, length: 0 });
  });

  it('the image never reaches the last MiB (where the marker is): disk_too_small', () => {
    expect(planWrite(10 * MiB, 9 * MiB).verify.length).toBe(9 * MiB);
    for (const [disk, image] of [
      [10 * MiB, 9 * MiB + 1],
      [10 * MiB, 10 * MiB],
      [MiB, 1],
      [0, 1],
    ] as const) {
      let err: unknown;
      try {
        planWrite(disk, image);
      } catch (e) {
        err = e;
      }
      expect(err, `${disk}/${image}`).toBeInstanceOf(InstallerError);
      expect((err as InstallerError).code).toBe('disk_too_small');
    }
  });

  it('refuses sizes that are not byte counts', () => {
    expect(() => planWrite(-1, 10)).toThrow(RangeError);
    expect(() => planWrite(10 * MiB, 0)).toThrow(RangeError);
    expect(() => planWrite(10 * MiB, 1.5)).toThrow(RangeError);
  });
});
