import { describe, expect, it } from 'vitest';
import { parseEngineFor } from './space.ts';

describe('T13 A5 tips space set --engine-for', () => {
  it('reads <label>=<value>:<engine>, the engine after the last colon (label values may hold colons only before it)', () => {
    expect(parseEngineFor('arch=arm64:tinkerbell')).toEqual({ match: 'arch=arm64', engine: 'tinkerbell' });
    expect(parseEngineFor('tips.io/rack=r7:builtin')).toEqual({ match: 'tips.io/rack=r7', engine: 'builtin' });
  });

  it('refuses anything else before a request is made (exit 2, naming the option)', () => {
    for (const bad of ['arch:tinkerbell', 'arch=arm64', 'arch=arm64:foreman', '=arm64:builtin', 'arch=:builtin', 'a=b=c:builtin', 'arch=arm 64:builtin']) {
      expect(() => parseEngineFor(bad), bad).toThrow(/--engine|engine must be/);
    }
  });
});
