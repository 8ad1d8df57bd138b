import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.ts';

describe('T9 group commit of registration-path writes', () => {
  it('batches concurrent submissions, answers each with its own result, in order', async () => {
    const batches: number[][] = [];
    const g = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      await new Promise((r) => setTimeout(r, 5));
      return items.map((x) => x * 2);
    }, 3);
    const first = await Promise.all([1, 2, 3, 4, 5].map((x) => g.submit(x)));
    expect(first).toEqual([2, 4, 6, 8, 10]);
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
    expect(await g.submit(7)).toBe(14);
  });

  it('fails every caller of a failed batch and keeps working for the next', async () => {
    let fail = true;
    const g = new GroupCommit<string, string>(async (items) => {
      if (fail) throw new Error('disk full');
      return items;
    });
    const r = await Promise.allSettled([g.submit('a'), g.submit('b')]);
    expect(r.map((x) => x.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    expect(await g.submit('c')).toBe('c');
  });

  it("writes one caller's group in a single batch, never split, with its results in order", async () => {
    const batches: number[][] = [];
    const g = new GroupCommit<number, number>(async (items) => {
      batches.push(items);
      return items.map((x) => -x);
    }, 4);
    const [a, b, c] = await Promise.all([g.submit(1), g.submitAll([2, 3, 4, 5]), g.submitAll([6, 7])]);
    expect(a).toBe(-1);
    expect(b).toEqual([-2, -3, -4, -5]);
    expect(c).toEqual([-6, -7]);
    // [1] cannot take the group of four without splitting it, so the group goes next, whole.
    expect(batches).toEqual([[1], [2, 3, 4, 5], [6, 7]]);
    expect(await g.submitAll([])).toEqual([]);
  });

  it('fails a group as a whole when its batch fails', async () => {
    const g = new GroupCommit<number, number>(async () => {
      throw new Error('disk full');
    });
    await expect(g.submitAll([1, 2, 3])).rejects.toThrow('disk full');
  });
});
