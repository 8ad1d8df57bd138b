import { describe, expect, it } from 'vitest';
import { InvalidValueError, isId, newId, parseId, parseMac, parseName, parsePhase } from './index.ts';

describe('T3 TIPS IDs are unique, unguessable and validated', () => {
  it('encodes 128 random bits with a kind prefix', () => {
    const id = newId('metal', new Uint8Array(16).fill(255));
    expect(id).toMatch(/^mtl_[0-9a-z]{26}$/);
    expect(parseId('metal', id)).toBe(id);
    expect(isId('space', id)).toBe(false);
  });
  it('rejects an ID of another kind', () => {
    const id = newId('space', new Uint8Array(16));
    expect(() => parseId('metal', id)).toThrow(InvalidValueError);
  });
});

describe('T3 MAC addresses are normalised and validated', () => {
  it.each([
    ['DC:A6:32:01:02:03', 'dc:a6:32:01:02:03'],
    ['dc-a6-32-01-02-03', 'dc:a6:32:01:02:03'],
    ['dca6.3201.0203', 'dc:a6:32:01:02:03'],
    ['dca632010203', 'dc:a6:32:01:02:03'],
  ])('%s → %s', (input, out) => expect(parseMac(input)).toBe(out));
  it.each(['dc:a6:32:01:02', 'zz:a6:32:01:02:03', 'dc:a6-32:01:02:03', '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', 42])(
    'rejects %s',
    (input) => expect(() => parseMac(input)).toThrow(InvalidValueError),
  );
});

describe('T4 phases and names', () => {
  it('accepts phases 1..3 only', () => {
    expect(parsePhase(2)).toBe(2);
    expect(() => parsePhase(4)).toThrow(/phase must be 1, 2 or 3/);
  });
  it('bounds names', () => {
    expect(parseName('pi-07')).toBe('pi-07');
    expect(() => parseName('x'.repeat(65))).toThrow(/1–64/);
    expect(() => parseName('bad name')).toThrow(InvalidValueError);
  });
});
