import type * as Suit from '@tips/suit';

/**
 * @tips/suit (SUIT, COSE, CBOR: a chunk of its own in dist/) is loaded when a command runs — the
 * root command's preAction hook awaits `loadSuit()` — not at every `tips` start: `tips --help` and
 * usage errors never need it (bench/cli-startup.ts).
 */
let lib: typeof Suit | undefined;

export async function loadSuit(): Promise<typeof Suit> {
  lib ??= await import('@tips/suit');
  return lib;
}

/** The loaded library; only inside a command's action (after the preAction hook). */
export function suit(): typeof Suit {
  if (!lib) throw new Error('@tips/suit is used before loadSuit() (only command actions may use it)');
  return lib;
}
