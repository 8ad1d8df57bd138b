import { describe, expect, it } from 'vitest';
import { article, findByRef, ID_PREFIX, InvalidValueError, isId, looksLikeId, newId, parseId, parseMac, parseName, parsePhase } from './index.ts';

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

describe('T3 references are unambiguous: names never take the shape of an ID', () => {
  it('refuses as a name every kind of ID, in any case, and keeps names that merely start like one', () => {
    for (const kind of Object.keys(ID_PREFIX) as (keyof typeof ID_PREFIX)[]) {
      const id = newId(kind, new Uint8Array(16).fill(7));
      expect(looksLikeId(id)).toBe(true);
      expect(() => parseName(id)).toThrow(/shape of an ID/);
      expect(() => parseName(id.toUpperCase())).toThrow(/shape of an ID/);
    }
    for (const id of ['tok_AbCdEfGhIjKlMnOp', 'cmd_AbCdEfGhIjKlMn-_', 'reg_00mabcdefgAbCdEfGhIjKl', 'mtl_ilou0123456789abcdefghjkmn']) expect(() => parseName(id)).toThrow(/shape of an ID/);
    for (const name of ['mtl_rack-7', 'key_rotation', 'spc_0123456789abcdefghjkmnpqr', 'tok_short', 'own_0123456789abcdefghjkmnpqrs0']) expect(parseName(name)).toBe(name);
  });
  it('looks an ID-shaped reference up only by ID, and only when it is of the kind asked for', async () => {
    const calls: string[] = [];
    const byId = async (id: string) => {
      calls.push(`id:${id}`);
      return 'by-id';
    };
    const byName = async (name: string) => {
      calls.push(`name:${name}`);
      return 'by-name';
    };
    const metal = newId('metal', new Uint8Array(16));
    const space = newId('space', new Uint8Array(16));
    expect(await findByRef('metal', metal, byId, byName)).toBe('by-id');
    expect(await findByRef('metal', space, byId, byName)).toBeUndefined();
    expect(await findByRef('metal', metal.toUpperCase(), byId, byName)).toBeUndefined();
    expect(await findByRef('metal', 'pi-07', byId, byName)).toBe('by-name');
    expect(calls).toEqual([`id:${metal}`, 'name:pi-07']);
  });
  it('writes "an" before a vowel in generated messages', () => {
    expect(article('array')).toBe('an');
    expect(article('owner')).toBe('an');
    expect(article('map')).toBe('a');
    expect(() => parseId('owner', 42)).toThrow('expected an owner ID string');
  });
});
