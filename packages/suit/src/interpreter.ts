/**
 * A small SUIT command interpreter (draft-ietf-suit-manifest §6, §8.4): runs a VerifiedManifest's
 * sequences against a device. What it does not implement stops the run with the SUIT report
 * reason for it (command-unsupported, component-unsupported, parameter-unsupported, ...).
 */
import { type CborMap, type CborValue, decodeCbor, encodeCbor, wrapBstr } from './cbor.ts';
import {
  COMMAND_NAMES,
  MEMBER_NAMES,
  REPORT_RECORD_ON_FAILURE,
  REPORT_RECORD_ON_SUCCESS,
  SUIT_CANDIDATE_VERIFICATION,
  SUIT_CONDITION_ABORT,
  SUIT_CONDITION_CHECK_CONTENT,
  SUIT_CONDITION_CLASS_IDENTIFIER,
  SUIT_CONDITION_COMPONENT_SLOT,
  SUIT_CONDITION_DEVICE_IDENTIFIER,
  SUIT_CONDITION_IMAGE_MATCH,
  SUIT_CONDITION_IMAGE_NOT_MATCH,
  SUIT_CONDITION_VENDOR_IDENTIFIER,
  SUIT_DEPENDENCY_RESOLUTION,
  SUIT_DIRECTIVE_COPY,
  SUIT_DIRECTIVE_FETCH,
  SUIT_DIRECTIVE_INVOKE,
  SUIT_DIRECTIVE_OVERRIDE_PARAMETERS,
  SUIT_DIRECTIVE_RUN_SEQUENCE,
  SUIT_DIRECTIVE_SET_COMPONENT_INDEX,
  SUIT_DIRECTIVE_SET_PARAMETERS,
  SUIT_DIRECTIVE_SWAP,
  SUIT_DIRECTIVE_TRY_EACH,
  SUIT_DIRECTIVE_WRITE,
  SUIT_INSTALL,
  SUIT_INVOKE,
  SUIT_LOAD,
  SUIT_PARAMETER_CLASS_IDENTIFIER,
  SUIT_PARAMETER_COMPONENT_SLOT,
  SUIT_PARAMETER_CONTENT,
  SUIT_PARAMETER_DEVICE_IDENTIFIER,
  SUIT_PARAMETER_FETCH_ARGUMENTS,
  SUIT_PARAMETER_IMAGE_DIGEST,
  SUIT_PARAMETER_IMAGE_SIZE,
  SUIT_PARAMETER_INVOKE_ARGS,
  SUIT_PARAMETER_SOFT_FAILURE,
  SUIT_PARAMETER_SOURCE_COMPONENT,
  SUIT_PARAMETER_URI,
  SUIT_PARAMETER_VENDOR_IDENTIFIER,
  SUIT_PAYLOAD_FETCH,
  SUIT_SHARED_SEQUENCE,
  SUIT_VALIDATE,
} from './constants.ts';
import { asSuitError, reportReason, SuitError, type SuitErrorCode, type SuitReportReason } from './errors.ts';
import { type ComponentId, componentKey, decodeEnvelope, parseDigest, type SuitCommandSequence, type SuitDigest } from './manifest.ts';
import type { SuitRecord } from './report.ts';
import { digestMatches, type VerifiedManifest } from './verify.ts';

/** The device the manifest acts on. Methods may be sync or async. */
export interface SuitDevice {
  vendorId?: Uint8Array;
  classId?: Uint8Array;
  deviceId?: Uint8Array;
  hasComponent(id: ComponentId): boolean;
  /** Current content of a component, undefined when empty. */
  read(id: ComponentId): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  write(id: ComponentId, data: Uint8Array): void | Promise<void>;
  /** Fetches a payload named by a URI that is not an integrated payload ("#name"). */
  fetch?(uri: string, args?: Uint8Array): Uint8Array | Promise<Uint8Array>;
  invoke?(id: ComponentId, args?: Uint8Array): void | Promise<void>;
  swap?(a: ComponentId, b: ComponentId): void | Promise<void>;
  /** The slot a component currently occupies (A/B). */
  slot?(id: ComponentId): number | undefined;
}

/** Components held in memory: what tests, the bench and a client's staging area use. */
export class MemoryDevice implements SuitDevice {
  readonly store = new Map<string, Uint8Array>();
  readonly invoked: string[] = [];
  readonly fetched: string[] = [];
  constructor(
    components: ComponentId[],
    readonly ids: { vendorId?: Uint8Array; classId?: Uint8Array; deviceId?: Uint8Array } = {},
    readonly remote: Map<string, Uint8Array> = new Map(),
  ) {
    for (const c of components) this.known.add(componentKey(c));
    if (ids.vendorId) this.vendorId = ids.vendorId;
    if (ids.classId) this.classId = ids.classId;
    if (ids.deviceId) this.deviceId = ids.deviceId;
  }
  readonly known = new Set<string>();
  vendorId?: Uint8Array;
  classId?: Uint8Array;
  deviceId?: Uint8Array;
  hasComponent(id: ComponentId): boolean {
    return this.known.has(componentKey(id));
  }
  read(id: ComponentId): Uint8Array | undefined {
    return this.store.get(componentKey(id));
  }
  write(id: ComponentId, data: Uint8Array): void {
    this.store.set(componentKey(id), data);
  }
  fetch(uri: string): Uint8Array {
    this.fetched.push(uri);
    const data = this.remote.get(uri);
    if (!data) throw new SuitError('suit_operation_failed', `fetch: expected ${uri} to be reachable, came nothing`);
    return data;
  }
  invoke(id: ComponentId): void {
    this.invoked.push(componentKey(id));
  }
  /** A/B slot each component occupies (set by the test or the client). */
  readonly slots = new Map<string, number>();
  slot(id: ComponentId): number | undefined {
    return this.slots.get(componentKey(id));
  }
  swap(a: ComponentId, b: ComponentId): void {
    const x = this.read(a);
    const y = this.read(b);
    if (y) this.write(a, y);
    else this.store.delete(componentKey(a));
    if (x) this.write(b, x);
    else this.store.delete(componentKey(b));
  }
}

export interface RunFailure {
  code: SuitErrorCode;
  reason: SuitReportReason;
  message: string;
  section: number;
  offset: number;
  componentIndex: number;
}

export interface RunResult {
  ok: boolean;
  records: SuitRecord[];
  failure?: RunFailure;
}

/** The update procedure then the invocation procedure (§8.4.2). */
export const DEFAULT_SECTIONS = [SUIT_DEPENDENCY_RESOLUTION, SUIT_PAYLOAD_FETCH, SUIT_CANDIDATE_VERIFICATION, SUIT_INSTALL, SUIT_VALIDATE, SUIT_LOAD, SUIT_INVOKE];

class Failure extends SuitError {
  constructor(
    code: SuitErrorCode,
    message: string,
    readonly section: number,
    readonly offsetInSection: number,
    readonly componentIndex: number,
  ) {
    super(code, message);
  }
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

function commandOffsets(seq: SuitCommandSequence): number[] {
  // Byte offset of each command id inside the sequence bytes: the array head, then each pair.
  const out: number[] = [];
  let pos = encodeCbor(new Array(seq.commands.length * 2).fill(0)).length - seq.commands.length * 2;
  const raw = decodeCbor(seq.bytes) as CborValue[];
  for (let i = 0; i < raw.length; i += 2) {
    out.push(pos);
    pos += encodeCbor(raw[i]!).length + encodeCbor(raw[i + 1]!).length;
  }
  return out;
}

class Run {
  params: Map<number, CborValue>[];
  current: number[] = [0];
  records: SuitRecord[] = [];
  constructor(
    readonly verified: VerifiedManifest,
    readonly device: SuitDevice,
  ) {
    // Dependencies (trust domains) share the component index space; their manifests are staged in
    // memory for this run, never written to the device.
    this.components = [...verified.manifest.common.components];
    for (const [idx, meta] of verified.manifest.common.dependencies ?? []) {
      if (typeof idx !== 'number' || idx > 255) continue;
      const prefix = meta instanceof Map ? meta.get(1) : undefined;
      const id = Array.isArray(prefix) ? prefix.map((p) => (p instanceof Uint8Array ? p : new Uint8Array(Buffer.from(String(p))))) : [new Uint8Array(Buffer.from(`dependency-${idx}`))];
      this.components[idx] = id;
      this.dependencies.set(idx, undefined);
    }
    this.params = Array.from(this.components, () => new Map());
  }

  readonly components: ComponentId[];
  /** Staged dependency manifests by component index. */
  readonly dependencies = new Map<number, Uint8Array | undefined>();

  isDependency(ci: number): boolean {
    return this.dependencies.has(ci);
  }

  async read(ci: number): Promise<Uint8Array | undefined> {
    return this.isDependency(ci) ? this.dependencies.get(ci) : this.device.read(this.components[ci]!);
  }

  async write(ci: number, data: Uint8Array): Promise<void> {
    if (this.isDependency(ci)) this.dependencies.set(ci, data);
    else await this.device.write(this.components[ci]!, data);
  }

  param(ci: number, id: number): CborValue | undefined {
    return this.params[ci]!.get(id);
  }

  need<T extends CborValue>(ci: number, id: number, check: (v: CborValue) => v is T, what: string): T {
    const v = this.param(ci, id);
    if (v === undefined) throw new SuitError('suit_parameter_missing', `${what}: expected the parameter to be set for component ${ci}, came none`);
    if (!check(v)) throw new SuitError('suit_bad_type', `${what}: expected a value of the right type`);
    return v;
  }

  record(section: number, offset: number, ci: number): void {
    const props: CborMap = new Map();
    for (const [k, v] of this.params[ci] ?? []) props.set(k, v);
    this.records.push({ manifestId: [], section, offset, componentIndex: ci, properties: props });
  }

  async sequence(seq: SuitCommandSequence, section: number, base: number, soft: boolean): Promise<void> {
    const offsets = commandOffsets(seq);
    for (let i = 0; i < seq.commands.length; i++) {
      const cmd = seq.commands[i]!;
      const offset = base + offsets[i]!;
      const targets = cmd.id === SUIT_DIRECTIVE_SET_COMPONENT_INDEX ? [this.current[0] ?? 0] : this.current;
      for (const ci of targets) {
        const policy = cmd.arg.kind === 'policy' ? cmd.arg.policy : 0;
        try {
          await this.command(cmd.id, cmd.arg, ci, section, offset);
          if (policy & REPORT_RECORD_ON_SUCCESS) this.record(section, offset, ci);
        } catch (e) {
          if (policy & REPORT_RECORD_ON_FAILURE) this.record(section, offset, ci);
          if (e instanceof Failure) throw e;
          const err = asSuitError(e);
          const softFail = soft || this.param(ci, SUIT_PARAMETER_SOFT_FAILURE) === true;
          if (softFail && isConditionFailure(err.code)) throw new SoftFailure(err);
          throw new Failure(err.code, err.message, section, offset, ci);
        }
        if (cmd.id === SUIT_DIRECTIVE_SET_COMPONENT_INDEX) break;
      }
    }
  }

  async command(id: number, arg: SuitCommandSequence['commands'][number]['arg'], ci: number, section: number, offset: number): Promise<void> {
    const comp = this.components[ci];
    if (!comp) throw new SuitError('suit_component_unsupported', `component index: expected below ${this.components.length}, came ${ci}`);
    if (TOUCHES_COMPONENT.has(id) && !this.isDependency(ci) && !this.device.hasComponent(comp)) {
      throw new SuitError('suit_component_unsupported', `component ${componentKey(comp)}: expected a component this device has, came an unknown one`);
    }
    switch (id) {
      case SUIT_DIRECTIVE_SET_COMPONENT_INDEX: {
        if (arg.kind !== 'index') break;
        const idx = arg.index === true ? this.components.map((_, i) => i) : Array.isArray(arg.index) ? arg.index : [arg.index];
        for (const x of idx) {
          if (!this.components[x]) throw new SuitError('suit_component_unsupported', `set-component-index: expected an index below ${this.components.length}, came ${x}`);
        }
        this.current = idx;
        return;
      }
      case SUIT_DIRECTIVE_OVERRIDE_PARAMETERS:
      case SUIT_DIRECTIVE_SET_PARAMETERS: {
        if (arg.kind !== 'parameters') break;
        for (const [k, v] of arg.parameters) {
          if (id === SUIT_DIRECTIVE_SET_PARAMETERS && this.params[ci]!.has(k)) continue;
          this.params[ci]!.set(k, v);
        }
        return;
      }
      case SUIT_CONDITION_VENDOR_IDENTIFIER:
      case SUIT_CONDITION_CLASS_IDENTIFIER:
      case SUIT_CONDITION_DEVICE_IDENTIFIER: {
        const p = id === SUIT_CONDITION_VENDOR_IDENTIFIER ? SUIT_PARAMETER_VENDOR_IDENTIFIER : id === SUIT_CONDITION_CLASS_IDENTIFIER ? SUIT_PARAMETER_CLASS_IDENTIFIER : SUIT_PARAMETER_DEVICE_IDENTIFIER;
        const want = this.need(ci, p, isBytes, COMMAND_NAMES[id]!);
        const have = id === SUIT_CONDITION_VENDOR_IDENTIFIER ? this.device.vendorId : id === SUIT_CONDITION_CLASS_IDENTIFIER ? this.device.classId : this.device.deviceId;
        if (!have || !eq(have, want)) throw new SuitError('suit_condition_failed', `${COMMAND_NAMES[id]}: expected the device's identifier, came another`);
        return;
      }
      case SUIT_CONDITION_IMAGE_MATCH:
      case SUIT_CONDITION_IMAGE_NOT_MATCH: {
        const d = parseDigest(decodeCbor(this.need(ci, SUIT_PARAMETER_IMAGE_DIGEST, isBytes, 'image-digest')), 'image-digest');
        const content = await this.read(ci);
        const size = this.param(ci, SUIT_PARAMETER_IMAGE_SIZE);
        let match = content !== undefined && (this.isDependency(ci) ? dependencyDigestMatches(d, content) : digestMatches(d, content));
        if (match && typeof size === 'number' && content!.length !== size) match = false;
        if (match !== (id === SUIT_CONDITION_IMAGE_MATCH)) throw new SuitError('suit_condition_failed', `${COMMAND_NAMES[id]}: expected the image ${id === SUIT_CONDITION_IMAGE_MATCH ? 'to match' : 'not to match'} its digest`);
        return;
      }
      case SUIT_CONDITION_CHECK_CONTENT: {
        const want = this.need(ci, SUIT_PARAMETER_CONTENT, isBytes, 'content');
        const content = await this.read(ci);
        if (!content || !eq(content, want)) throw new SuitError('suit_condition_failed', 'check-content: expected the component to hold the given content, came other bytes');
        return;
      }
      case SUIT_CONDITION_COMPONENT_SLOT: {
        const want = this.need(ci, SUIT_PARAMETER_COMPONENT_SLOT, isNumber, 'component-slot');
        if (!this.device.slot) throw new SuitError('suit_command_unsupported', 'condition-component-slot: this device has no slots');
        if (this.device.slot(comp) !== want) throw new SuitError('suit_condition_failed', `component-slot: expected slot ${want}, came ${String(this.device.slot(comp))}`);
        return;
      }
      case SUIT_CONDITION_ABORT:
        throw new SuitError('suit_abort', 'condition-abort: the manifest asked to abort');
      case SUIT_DIRECTIVE_WRITE: {
        const content = this.need(ci, SUIT_PARAMETER_CONTENT, isBytes, 'content');
        await this.write(ci, content);
        return;
      }
      case SUIT_DIRECTIVE_FETCH: {
        const uri = this.need(ci, SUIT_PARAMETER_URI, isString, 'uri');
        let data = this.verified.envelope.integrated.get(uri);
        if (!data) {
          if (uri.startsWith('#')) throw new SuitError('suit_operation_failed', `fetch: expected integrated payload "${uri}" in the envelope, came none`);
          if (!this.device.fetch) throw new SuitError('suit_command_unsupported', 'directive-fetch: this device cannot fetch URIs');
          const args = this.param(ci, SUIT_PARAMETER_FETCH_ARGUMENTS);
          data = await this.device.fetch(uri, args instanceof Uint8Array ? args : undefined);
        }
        await this.write(ci, data);
        return;
      }
      case SUIT_DIRECTIVE_COPY:
      case SUIT_DIRECTIVE_SWAP: {
        const src = this.need(ci, SUIT_PARAMETER_SOURCE_COMPONENT, isNumber, 'source-component');
        const other = this.components[src];
        if (!other || (!this.isDependency(src) && !this.device.hasComponent(other))) throw new SuitError('suit_component_unsupported', `source-component: expected a known component index, came ${src}`);
        if (id === SUIT_DIRECTIVE_SWAP) {
          if (!this.device.swap) throw new SuitError('suit_command_unsupported', 'directive-swap: this device cannot swap');
          await this.device.swap(comp, other);
        } else {
          const data = await this.read(src);
          if (!data) throw new SuitError('suit_operation_failed', `copy: expected content in component ${src}, came none`);
          await this.write(ci, data);
        }
        return;
      }
      case SUIT_DIRECTIVE_INVOKE: {
        if (!this.device.invoke) throw new SuitError('suit_command_unsupported', 'directive-invoke: this device cannot invoke');
        const args = this.param(ci, SUIT_PARAMETER_INVOKE_ARGS);
        await this.device.invoke(comp, args instanceof Uint8Array ? args : undefined);
        return;
      }
      case SUIT_DIRECTIVE_TRY_EACH: {
        if (arg.kind !== 'try-each') break;
        const saved = { params: this.params.map((m) => new Map(m)), current: [...this.current] };
        for (const option of arg.options) {
          try {
            await this.sequence(option, section, offset, true);
            return;
          } catch (e) {
            if (!(e instanceof SoftFailure)) throw e;
            this.params = saved.params.map((m) => new Map(m));
            this.current = [...saved.current];
          }
        }
        if (arg.otherwiseNil) return;
        throw new SuitError('suit_condition_failed', 'try-each: expected one option to succeed, came none');
      }
      case SUIT_DIRECTIVE_RUN_SEQUENCE: {
        if (arg.kind !== 'sequence') break;
        const saved = [...this.current];
        this.current = [ci];
        try {
          await this.sequence(arg.sequence, section, offset, this.param(ci, SUIT_PARAMETER_SOFT_FAILURE) === true);
        } finally {
          this.current = saved;
        }
        return;
      }
    }
    throw new SuitError('suit_command_unsupported', `${COMMAND_NAMES[id] ?? `command ${id}`}: not supported by this processor`);
  }
}

class SoftFailure extends Error {
  constructor(readonly failed: SuitError) {
    super(failed.message);
  }
}

function isConditionFailure(code: SuitErrorCode): boolean {
  return code === 'suit_condition_failed' || code === 'suit_abort';
}
/** A dependency is identified by its manifest digest (trust domains): the one its envelope signs. */
export function dependencyDigestMatches(d: SuitDigest, envelope: Uint8Array): boolean {
  try {
    const env = decodeEnvelope(envelope);
    return env.authentication !== undefined && digestMatches(d, wrapBstr(env.manifestBytes)) && eq(env.authentication.digest.bytes, d.bytes);
  } catch {
    return false;
  }
}

/** Commands that read or write the component itself: the device must have it. */
const TOUCHES_COMPONENT: ReadonlySet<number> = new Set([
  SUIT_CONDITION_IMAGE_MATCH,
  SUIT_CONDITION_IMAGE_NOT_MATCH,
  SUIT_CONDITION_CHECK_CONTENT,
  SUIT_CONDITION_COMPONENT_SLOT,
  SUIT_DIRECTIVE_WRITE,
  SUIT_DIRECTIVE_FETCH,
  SUIT_DIRECTIVE_COPY,
  SUIT_DIRECTIVE_SWAP,
  SUIT_DIRECTIVE_INVOKE,
]);
const isBytes = (v: CborValue): v is Uint8Array => v instanceof Uint8Array;
const isString = (v: CborValue): v is string => typeof v === 'string';
const isNumber = (v: CborValue): v is number => typeof v === 'number';

/**
 * Runs the shared sequence and then each present section in `sections` order. Never throws for a
 * manifest's failure: it comes back in `failure` with the report reason.
 */
export async function runManifest(verified: VerifiedManifest, device: SuitDevice, options: { sections?: readonly number[] } = {}): Promise<RunResult> {
  const run = new Run(verified, device);
  const m = verified.manifest;
  try {
    for (const section of options.sections ?? DEFAULT_SECTIONS) {
      let seq: SuitCommandSequence | undefined = m.sequences.get(section);
      if (!seq && m.severable.has(section)) {
        const member = verified.members.get(section);
        if (!member || member.severed) throw new Failure('suit_severed_missing', `${MEMBER_NAMES[section]}: expected the severed member in the envelope, came none`, section, 0, 0);
        seq = member.sequence;
      }
      if (!seq) continue;
      run.current = [0];
      if (m.common.sharedSequence) await run.sequence(m.common.sharedSequence, SUIT_SHARED_SEQUENCE, 0, false);
      run.current = [0];
      await run.sequence(seq, section, 0, false);
    }
    return { ok: true, records: run.records };
  } catch (e) {
    const f =
      e instanceof Failure
        ? e
        : e instanceof SoftFailure
          ? new Failure(e.failed.code, e.failed.message, 0, 0, 0)
          : new Failure(asSuitError(e).code, asSuitError(e).message, 0, 0, 0);
    return {
      ok: false,
      records: run.records,
      failure: { code: f.code, reason: reportReason(f.code), message: f.message, section: f.section, offset: f.offsetInSection, componentIndex: f.componentIndex },
    };
  }
}
