/**
 * The write plan (A6): which byte ranges go to the disk, in which order. Pure, so the order that
 * makes the write power-safe is tested without a disk:
 *   1. wipe the marker (the disk stops claiming what it held),
 *   2. every image byte except the first MiB (the disk is not bootable while half written),
 *   3. fsync, 4. the first MiB (partition table and boot code), 5. fsync,
 *   6. read the image range back and compare its SHA-256, 7. configure, 8. write the marker.
 */
import { InstallerError } from './errors.ts';
import { MARKER_SIZE } from './marker.ts';

export const HEAD_SIZE = 1024 * 1024;

export interface Range {
  offset: number;
  length: number;
}

export interface WritePlan {
  markerOffset: number;
  /** Image bytes [HEAD_SIZE, size): written first. Empty when the image fits in the head. */
  body: Range;
  /** Image bytes [0, min(size, HEAD_SIZE)): written after the body is on the disk. */
  head: Range;
  /** The range read back and hashed: the whole image. */
  verify: Range;
}

export function planWrite(diskSize: number, imageSize: number): WritePlan {
  if (!Number.isSafeInteger(diskSize) || diskSize < 0) throw new RangeError(`diskSize: expected a non-negative integer, came ${diskSize}`);
  if (!Number.isSafeInteger(imageSize) || imageSize <= 0) throw new RangeError(`imageSize: expected a positive integer, came ${imageSize}`);
  // The marker lives in the last 4 KiB; the last MiB is kept free so no image ever overlaps it.
  if (diskSize < MARKER_SIZE || imageSize > diskSize - HEAD_SIZE) {
    throw new InstallerError('disk_too_small', `the Glaze needs ${imageSize} bytes and the disk holds ${diskSize} (at most disk size − 1 MiB = ${Math.max(0, diskSize - HEAD_SIZE)})`);
  }
  const headLength = Math.min(imageSize, HEAD_SIZE);
  return {
    markerOffset: diskSize - MARKER_SIZE,
    body: { offset: headLength, length: imageSize - headLength },
    head: { offset: 0, length: headLength },
    verify: { offset: 0, length: imageSize },
  };
}
