/**
 * Integrated payloads against the image digests that bind them (S1, S2, T12). Authentication
 * covers the manifest only; a payload carried in the envelope is bound by the image-digest (and
 * image-size) in effect for the component it is fetched into. A device checks that at install
 * (condition-image-match); a verifier that stops before installing (`tips suit verify`) checks it
 * here, statically: it walks every command sequence as the interpreter would, tracking parameters
 * per component (set-component-index, override/set-parameters, every try-each branch,
 * run-sequence), and at each directive-fetch of an integrated payload compares the payload.
 */
import { type CborValue, decodeCbor } from './cbor.ts';
import {
  SUIT_DIRECTIVE_FETCH,
  SUIT_DIRECTIVE_OVERRIDE_PARAMETERS,
  SUIT_DIRECTIVE_RUN_SEQUENCE,
  SUIT_DIRECTIVE_SET_COMPONENT_INDEX,
  SUIT_DIRECTIVE_SET_PARAMETERS,
  SUIT_DIRECTIVE_TRY_EACH,
  SUIT_PARAMETER_IMAGE_DIGEST,
  SUIT_PARAMETER_IMAGE_SIZE,
  SUIT_PARAMETER_URI,
} from './constants.ts';
import { SuitError } from './errors.ts';
import { DEFAULT_SECTIONS, dependencyDigestMatches } from './interpreter.ts';
import { parseDigest, type SuitCommand, type SuitCommandSequence } from './manifest.ts';
import { type AuthenticatedFields, digestMatches } from './verify.ts';

/** One integrated payload checked against the digest of one component it is fetched into. */
export interface IntegratedPayloadCheck {
  name: string;
  component: number;
  size: number;
}

interface State {
  params: Map<number, Map<number, CborValue>>;
  current: number[];
}

interface Fetch {
  name: string;
  component: number;
  digest: CborValue | undefined;
  size: CborValue | undefined;
}

/** try-each branches are followed separately; past this many paths the check gives up (refuses). */
const MAX_PATHS = 256;

function clone(s: State): State {
  return { params: new Map([...s.params].map(([k, v]) => [k, new Map(v)])), current: [...s.current] };
}

class Walker {
  readonly fetches: Fetch[] = [];
  constructor(
    readonly integrated: ReadonlyMap<string, Uint8Array>,
    readonly componentCount: number,
  ) {}

  sequence(seq: SuitCommandSequence, states: State[]): State[] {
    for (const cmd of seq.commands) states = this.command(cmd, states);
    return states;
  }

  command(cmd: SuitCommand, states: State[]): State[] {
    const a = cmd.arg;
    if (cmd.id === SUIT_DIRECTIVE_SET_COMPONENT_INDEX && a.kind === 'index') {
      const idx = a.index === true ? Array.from({ length: this.componentCount }, (_, i) => i) : Array.isArray(a.index) ? a.index : [a.index];
      for (const s of states) s.current = [...idx];
    } else if ((cmd.id === SUIT_DIRECTIVE_OVERRIDE_PARAMETERS || cmd.id === SUIT_DIRECTIVE_SET_PARAMETERS) && a.kind === 'parameters') {
      for (const s of states) {
        for (const ci of s.current) {
          const p = s.params.get(ci) ?? new Map<number, CborValue>();
          s.params.set(ci, p);
          for (const [k, v] of a.parameters) if (cmd.id === SUIT_DIRECTIVE_OVERRIDE_PARAMETERS || !p.has(k)) p.set(k, v);
        }
      }
    } else if (cmd.id === SUIT_DIRECTIVE_TRY_EACH && a.kind === 'try-each') {
      const out: State[] = [];
      for (const option of a.options) out.push(...this.sequence(option, states.map(clone)));
      if (a.otherwiseNil) out.push(...states);
      if (out.length > MAX_PATHS) throw new SuitError('suit_payload_mismatch', `integrated payloads: expected at most ${MAX_PATHS} try-each paths to check, came ${out.length}`);
      return out;
    } else if (cmd.id === SUIT_DIRECTIVE_RUN_SEQUENCE && a.kind === 'sequence') {
      const out: State[] = [];
      for (const s of states) {
        let sub = [s];
        for (const ci of s.current) {
          for (const x of sub) x.current = [ci];
          sub = this.sequence(a.sequence, sub);
        }
        for (const x of sub) x.current = [...s.current];
        out.push(...sub);
      }
      return out;
    } else if (cmd.id === SUIT_DIRECTIVE_FETCH) {
      for (const s of states) {
        for (const ci of s.current) {
          const p = s.params.get(ci);
          const uri = p?.get(SUIT_PARAMETER_URI);
          if (typeof uri === 'string' && this.integrated.has(uri)) {
            this.fetches.push({ name: uri, component: ci, digest: p!.get(SUIT_PARAMETER_IMAGE_DIGEST), size: p!.get(SUIT_PARAMETER_IMAGE_SIZE) });
          }
        }
      }
    }
    return states;
  }
}

/** Why a fetched payload does not match what binds it on one path, or undefined when it does. */
function mismatch(f: Fetch, data: Uint8Array, dependency: boolean): string | undefined {
  const where = `integrated payload "${f.name}" (component ${f.component})`;
  if (!(f.digest instanceof Uint8Array)) return `${where}: expected an image-digest to check it against, came none`;
  const d = parseDigest(decodeCbor(f.digest), 'image-digest');
  if (!(dependency ? dependencyDigestMatches(d, data) : digestMatches(d, data))) return `${where}: expected it to match its image-digest, came a different payload`;
  if (typeof f.size === 'number' && f.size !== data.length) return `${where}: expected image-size ${f.size} bytes, came ${data.length}`;
  return undefined;
}

/**
 * Checks every integrated payload of an authenticated envelope against the image-digest and
 * image-size in effect where the manifest fetches it (a dependency's against its manifest digest).
 * Throws `suit_payload_mismatch` naming the payload, the component and what differs; a payload
 * no fetch names, or one fetched with no image-digest, is refused too (nothing binds it).
 */
export function checkIntegratedPayloads(auth: AuthenticatedFields): IntegratedPayloadCheck[] {
  const integrated = auth.envelope.integrated;
  if (integrated.size === 0) return [];
  const m = auth.manifest;
  const dependencies = new Set<number>();
  for (const k of m.common.dependencies?.keys() ?? []) if (typeof k === 'number') dependencies.add(k);
  const walker = new Walker(integrated, Math.max(m.common.components.length, ...[...dependencies].map((d) => d + 1)));
  // Every section the manifest (or a carried severed member) holds, the interpreter's order first.
  const sections = [...DEFAULT_SECTIONS];
  for (const k of [...m.sequences.keys(), ...auth.members.keys()].sort((a, b) => a - b)) if (!sections.includes(k)) sections.push(k);
  let states: State[] = [{ params: new Map(), current: [0] }];
  for (const section of sections) {
    const member = auth.members.get(section);
    const seq = m.sequences.get(section) ?? (member && !member.severed ? member.sequence : undefined);
    if (!seq) continue;
    for (const s of states) s.current = [0];
    if (m.common.sharedSequence) states = walker.sequence(m.common.sharedSequence, states);
    for (const s of states) s.current = [0];
    states = walker.sequence(seq, states);
  }
  // Each component a payload is fetched into needs one path (try-each branch) whose digest and
  // size it matches: the device takes one path, and the others fail its condition-image-match.
  const results = new Map<string, { check?: IntegratedPayloadCheck; error?: string }>();
  for (const f of walker.fetches) {
    const at = `${f.name}\u0000${f.component}`;
    const r = results.get(at) ?? {};
    results.set(at, r);
    if (r.check) continue;
    const error = mismatch(f, integrated.get(f.name)!, dependencies.has(f.component));
    if (error) r.error ??= error;
    else r.check = { name: f.name, component: f.component, size: integrated.get(f.name)!.length };
  }
  const out: IntegratedPayloadCheck[] = [];
  for (const r of results.values()) {
    if (!r.check) throw new SuitError('suit_payload_mismatch', r.error!);
    out.push(r.check);
  }
  for (const name of integrated.keys()) {
    if (!out.some((c) => c.name === name)) throw new SuitError('suit_payload_mismatch', `integrated payload "${name}": expected a directive-fetch in the manifest to name it, came none (nothing binds it)`);
  }
  return out;
}
