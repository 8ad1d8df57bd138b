import type { Readable } from 'node:stream';
import { findByRef, type GlazeId, InvalidValueError, newId, type OwnerId, parseName, parseSha256, type Sha256, type SpaceId } from '@tips/core';
import type { BlobStore, ByteRange, StoredBlob } from '../../blob/blob-store.ts';
import { isUniqueViolation } from '../../db/database.ts';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { DomainEvents } from '../../events.ts';
import type { Clock, Random } from '../../ports.ts';
import type { GlazeLookup, SpaceService } from '../spaces/service.ts';
import { GlazeError } from './errors.ts';
import { GLAZE_HANDLERS, type Glaze, type GlazeHandler, VERSION_RE } from './model.ts';
import type { GlazeStore } from './store.ts';
import { testCrashPoint } from './test-crash-point.ts';

export interface UploadInput {
  name: string;
  spaces: string[];
  mediaType?: string;
  /** Content-Length announced by the client: fewer bytes means a truncated upload. */
  expectedSize?: number;
  /** Digest the client computed: a mismatch means corruption in transit. */
  expectedSha256?: string;
  /** Install handler on the metal (default archive). */
  handler?: string;
  /** Version label (`name@version`). */
  version?: string;
}

/** What a reconciliation removed: blobs no Glaze references, and partial writes of dead uploads. */
export interface Reconciliation {
  blobs: StoredBlob[];
  partials: StoredBlob[];
}

const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i;

/** The Glaze repository (T12): streamed uploads into the blob store, owner-scoped metadata. */
export class GlazeService implements GlazeLookup {
  constructor(
    private readonly store: GlazeStore,
    private readonly blobs: BlobStore,
    private readonly spaces: SpaceService,
    events: DomainEvents,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly maxBytes: number,
  ) {
    events.on('space.deleted', (e) => this.store.forgetSpace(e.spaceId as SpaceId));
  }

  async upload(ownerId: OwnerId, input: UploadInput, body: AsyncIterable<Uint8Array> | Readable): Promise<Glaze> {
    // Everything that can be refused is checked before a byte is stored.
    const name = parseName(input.name);
    const spaces = await this.resolveSpaces(ownerId, input.spaces);
    const mediaType = input.mediaType ?? 'application/octet-stream';
    if (!MEDIA_TYPE.test(mediaType)) throw new InvalidValueError('mediaType', `"${mediaType.slice(0, 64)}" is not a media type like application/octet-stream`);
    const expectedSha = input.expectedSha256 === undefined ? undefined : parseSha256(input.expectedSha256, 'sha256');
    if (input.expectedSize !== undefined && input.expectedSize > this.maxBytes) {
      throw new GlazeError('upload_too_large', `a Glaze may be at most ${this.maxBytes} bytes`, 'body');
    }
    const handler = input.handler ?? 'archive';
    if (!(GLAZE_HANDLERS as readonly string[]).includes(handler)) throw new InvalidValueError('handler', `handler must be one of ${GLAZE_HANDLERS.join(', ')}, got "${handler.slice(0, 32)}"`);
    if (input.version !== undefined && !VERSION_RE.test(input.version)) {
      throw new InvalidValueError('version', 'version must be 1–32 letters, digits, ".", "_", "+" or "-", starting with a letter or digit');
    }
    if (await this.store.findByName(ownerId, name)) throw this.nameTaken(name);

    const id = newId('glaze', this.random.bytes(16));
    const info = await this.blobs.put(id, this.bounded(body));
    // A kill from here until the row commits leaves a blob no row references: `reconcile` removes it.
    await testCrashPoint('glaze-after-rename', id);
    try {
      if (input.expectedSize !== undefined && info.size !== input.expectedSize) {
        throw new GlazeError('upload_truncated', `received ${info.size} of ${input.expectedSize} announced bytes`, 'body');
      }
      if (expectedSha && info.sha256 !== expectedSha) {
        throw new GlazeError('digest_mismatch', `payload SHA-256 is ${info.sha256}, the client announced ${expectedSha}`, 'sha256');
      }
      const glaze: Glaze = {
        id,
        ownerId,
        name,
        size: info.size,
        sha256: info.sha256 as Sha256,
        mediaType,
        createdAt: this.clock.now().toISOString(),
        spaces,
        handler: handler as GlazeHandler,
        version: input.version ?? null,
      };
      // The row is written only once the blob is complete and durable.
      await this.store.insert(glaze);
      return glaze;
    } catch (err) {
      await this.blobs.delete(id);
      if (isUniqueViolation(err)) throw this.nameTaken(name);
      throw err;
    }
  }

  /**
   * Removes what interrupted uploads left: blobs no Glaze row references and partial writes, both
   * only when last written before `olderThan`. The age bound is what makes this safe while other
   * replicas share the blob store and the database: their in-flight upload has a partial write
   * touched within the upload idle timeout, or a blob placed moments before its row commits.
   */
  async reconcile(olderThan: Date): Promise<Reconciliation> {
    const partials = await this.blobs.removeStalePartials(olderThan);
    const candidates = (await this.blobs.list()).filter((b) => b.modifiedAt < olderThan);
    const referenced = await this.store.referencedBlobKeys(candidates.map((b) => b.key));
    const blobs: StoredBlob[] = [];
    for (const b of candidates) {
      if (referenced.has(b.key)) continue;
      await this.blobs.delete(b.key);
      blobs.push(b);
    }
    return { blobs, partials };
  }

  /** By ID, by name, or as `name@version` (the Glaze of that name, which must carry that version label). */
  async get(ownerId: OwnerId, ref: string): Promise<Glaze> {
    const at = ref.indexOf('@');
    if (at > 0) {
      const g = await this.store.findByName(ownerId, ref.slice(0, at));
      if (!g || g.version !== ref.slice(at + 1)) throw new GlazeError('glaze_not_found', `no Glaze "${ref}" (name@version)`, 'glaze');
      return g;
    }
    const g = await findByRef('glaze', ref, (id) => this.store.findById(ownerId, id), (name) => this.store.findByName(ownerId, name));
    if (!g) throw new GlazeError('glaze_not_found', `no Glaze "${ref}"`, 'glaze');
    return g;
  }

  async list(ownerId: OwnerId, spaceRef?: string, window?: KeysetWindow): Promise<Glaze[]> {
    const space = spaceRef === undefined ? undefined : await this.spaces.get(ownerId, spaceRef);
    return this.store.list(ownerId, space?.id, window);
  }

  async update(ownerId: OwnerId, ref: string, input: { name?: string; spaces?: string[] }): Promise<Glaze> {
    const g = await this.get(ownerId, ref);
    const next = { ...g };
    if (input.name !== undefined) {
      next.name = parseName(input.name);
      const other = await this.store.findByName(ownerId, next.name);
      if (other && other.id !== g.id) throw this.nameTaken(next.name);
    }
    if (input.spaces !== undefined) next.spaces = await this.resolveSpaces(ownerId, input.spaces);
    await this.store.update(next);
    return next;
  }

  async delete(ownerId: OwnerId, ref: string): Promise<void> {
    const g = await this.get(ownerId, ref);
    const users = await this.spaces.spacesUsingGlaze(g.id);
    if (users.length > 0) {
      throw new GlazeError('glaze_in_use', `Glaze "${g.name}" is used by Space(s) ${users.map((s) => `"${s.name}"`).join(', ')}`, 'glaze');
    }
    await this.store.delete(ownerId, g.id);
    await this.blobs.delete(g.id);
  }

  /** Opens the payload, whole or a byte range, after checking the owner may read it. */
  async open(ownerId: OwnerId, ref: string, range?: ByteRange): Promise<{ glaze: Glaze; stream: Readable }> {
    const glaze = await this.get(ownerId, ref);
    if (range && (range.start > range.end || range.end >= glaze.size)) {
      throw new GlazeError('range_not_satisfiable', `range ${range.start}-${range.end} is outside 0-${glaze.size - 1}`, 'range');
    }
    return { glaze, stream: await this.blobs.get(glaze.id, range) };
  }

  /** A short-lived URL the owner's client may fetch the payload from directly, when the blob store offers one. */
  async downloadUrl(glaze: Glaze): Promise<string | undefined> {
    return this.blobs.downloadUrl?.(glaze.id, { contentType: glaze.mediaType });
  }

  async resolveForSpace(ownerId: OwnerId, glazeRef: string, spaceId: SpaceId): Promise<{ id: GlazeId; allowed: boolean }> {
    const g = await this.get(ownerId, glazeRef);
    return { id: g.id, allowed: g.spaces.includes(spaceId) };
  }

  private async resolveSpaces(ownerId: OwnerId, refs: string[]): Promise<SpaceId[]> {
    const ids: SpaceId[] = [];
    for (const ref of refs) ids.push((await this.spaces.get(ownerId, ref)).id);
    return [...new Set(ids)].sort();
  }

  private async *bounded(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    let total = 0;
    for await (const chunk of body) {
      total += chunk.length;
      if (total > this.maxBytes) throw new GlazeError('upload_too_large', `a Glaze may be at most ${this.maxBytes} bytes`, 'body');
      yield chunk;
    }
  }

  private nameTaken(name: string): GlazeError {
    return new GlazeError('glaze_name_taken', `you already have a Glaze named "${name}"`, 'name');
  }
}
