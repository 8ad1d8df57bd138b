import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { findByRef, newId, type OwnerId, parseName } from '@tips/core';
import { authenticate, bindGlaze, decodeStage, importKey, SuitError, type TrustedKey, verifyGlazeBinding } from '@tips/suit';
import { isUniqueViolation } from '../../db/database.ts';
import type { KeysetWindow } from '../../db/keyset.ts';
import type { Clock, Random } from '../../ports.ts';
import type { GlazeService } from '../glazes/service.ts';
import { KeyError } from './errors.ts';
import { type GlazeManifest, MAX_ENVELOPE_BYTES, type OperatorKey } from './model.ts';
import type { KeyStore } from './store.ts';

function spkiPem(k: KeyObject): string {
  return k.export({ type: 'spki', format: 'pem' }).toString();
}
function kidOf(k: KeyObject): string {
  return createHash('sha256').update(k.export({ type: 'spki', format: 'der' })).digest('hex');
}
function algOf(k: KeyObject): 'ES256' | 'EdDSA' {
  if (k.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (k.asymmetricKeyType === 'ec' && k.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new KeyError('key_invalid', `expected an Ed25519 or P-256 public key, came ${k.asymmetricKeyType}`, 'publicKey');
}

export interface SignInput {
  key: string;
  sequenceNumber: number;
  vendorDomain: string;
  classInfo: string;
  component: string;
  uri: string;
}

/**
 * Operator signing keys (S5, S8): the public keys an owner registers, against which the manifests
 * uploaded for that owner's Glazes are checked. The CLI signs locally; a server-held key exists
 * only on explicit opt-in.
 */
export class KeyService {
  constructor(
    private readonly store: KeyStore,
    private readonly glazes: GlazeService,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {}

  /** Registers a public key (PEM or JWK). A private key given by mistake is reduced to its public half and never stored. */
  async register(ownerId: OwnerId, input: { name: string; publicKey: string }): Promise<OperatorKey> {
    let pub: KeyObject;
    try {
      const k = importKey(input.publicKey);
      pub = k.publicKey ?? createPublicKey(k.privateKey!);
    } catch (e) {
      throw new KeyError('key_invalid', `publicKey: ${(e as Error).message}`, 'publicKey');
    }
    return this.insert(ownerId, parseName(input.name), pub, null);
  }

  /** Creates a key the master holds (hobby use): the response and every listing say so. */
  async createServerHeld(ownerId: OwnerId, input: { name: string }): Promise<OperatorKey> {
    const name = parseName(input.name);
    const { privateKey } = generateKeyPairSync('ed25519');
    return this.insert(ownerId, name, createPublicKey(privateKey), privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  }

  private async insert(ownerId: OwnerId, name: string, pub: KeyObject, privatePem: string | null): Promise<OperatorKey> {
    const key: OperatorKey = {
      id: newId('key', this.random.bytes(16)),
      ownerId,
      name,
      alg: algOf(pub),
      publicKeyPem: spkiPem(pub),
      kid: kidOf(pub),
      serverHeld: privatePem !== null,
      createdAt: this.clock.now().toISOString(),
      revokedAt: null,
    };
    const existing = await this.store.list(ownerId);
    if (existing.some((k) => k.name === name)) throw new KeyError('key_name_taken', `you already have a key named "${name}"`, 'name');
    if (existing.some((k) => k.kid === key.kid)) throw new KeyError('key_already_registered', 'this public key is already registered', 'publicKey');
    try {
      await this.store.insert(key, privatePem);
    } catch (e) {
      if (isUniqueViolation(e)) throw new KeyError('key_name_taken', `you already have a key named "${name}" or this key`, 'name');
      throw e;
    }
    return key;
  }

  /** A key by ID or by name, never one for the other (a name cannot look like an ID). */
  private find(ownerId: OwnerId, ref: string) {
    return findByRef('key', ref, (id) => this.store.findById(ownerId, id), (name) => this.store.findByName(ownerId, name));
  }

  list(ownerId: OwnerId, window?: KeysetWindow): Promise<OperatorKey[]> {
    return this.store.list(ownerId, true, window);
  }

  async revoke(ownerId: OwnerId, ref: string): Promise<void> {
    const found = await this.find(ownerId, ref);
    if (!found || !(await this.store.revoke(ownerId, found.key.id, this.clock.now().toISOString()))) throw new KeyError('key_not_found', `no active key "${ref.slice(0, 64)}"`, 'key');
  }

  /** The owner's active keys as a SUIT trust list (name = key ID). */
  private async trust(ownerId: OwnerId): Promise<TrustedKey[]> {
    const keys = await this.store.list(ownerId, false);
    // Without a kid restriction: envelopes signed by other SUIT tools (no kid, or their own) verify too.
    return keys.map((k) => ({ ...importKey(k.publicKeyPem), name: k.id }));
  }

  /**
   * Attaches an operator-signed SUIT envelope to a Glaze: it must authenticate under one of the
   * owner's active keys and its image digest must be the Glaze payload's SHA-256.
   */
  async attachManifest(ownerId: OwnerId, glazeRef: string, envelope: Uint8Array): Promise<{ manifest: GlazeManifest; key: OperatorKey }> {
    if (envelope.length === 0 || envelope.length > MAX_ENVELOPE_BYTES) throw new KeyError('manifest_malformed', `a SUIT envelope of 1 to ${MAX_ENVELOPE_BYTES} bytes is expected`, 'body');
    const glaze = await this.glazes.get(ownerId, glazeRef);
    const trust = await this.trust(ownerId);
    let keyId: string;
    let sequenceNumber: string;
    try {
      const auth = authenticate(decodeStage(envelope), trust);
      keyId = (auth.key as TrustedKey).name!;
      sequenceNumber = String(auth.manifest.sequenceNumber);
      verifyGlazeBinding(envelope, glaze.sha256);
    } catch (e) {
      if (!(e instanceof SuitError)) throw e;
      if (e.code === 'glaze_digest_mismatch') throw new KeyError('manifest_digest_mismatch', e.message, 'body');
      if (e.code === 'suit_signature_invalid' || e.code === 'suit_untrusted_key' || e.code === 'suit_unsigned') {
        throw new KeyError('manifest_untrusted', `the manifest is not signed by one of your registered keys (${e.code})`, 'body');
      }
      throw new KeyError('manifest_malformed', e.message, 'body');
    }
    const manifest: GlazeManifest = { glazeId: glaze.id, ownerId, keyId, envelope, sequenceNumber, createdAt: this.clock.now().toISOString() };
    await this.store.putManifest(manifest);
    const key = (await this.store.findById(ownerId, keyId))!.key;
    return { manifest, key };
  }

  /** Hobby mode: the master builds and signs the Glaze's envelope with a server-held key. */
  async signWithServerKey(ownerId: OwnerId, glazeRef: string, input: SignInput): Promise<{ manifest: GlazeManifest; key: OperatorKey }> {
    const found = await this.find(ownerId, input.key);
    if (!found || found.key.revokedAt) throw new KeyError('key_not_found', `no active key "${input.key.slice(0, 64)}"`, 'key');
    if (!found.serverPrivateKeyPem) throw new KeyError('key_not_server_held', 'this key is not held by the master; sign locally with `tips glaze push --sign-key`', 'key');
    const glaze = await this.glazes.get(ownerId, glazeRef);
    let envelope: Uint8Array;
    try {
      envelope = bindGlaze({
        payloadSha256: glaze.sha256,
        payloadSize: glaze.size,
        uri: input.uri,
        vendorDomain: input.vendorDomain,
        classInfo: input.classInfo,
        component: input.component,
        sequenceNumber: input.sequenceNumber,
        key: importKey(createPrivateKey(found.serverPrivateKeyPem)),
      });
    } catch (e) {
      if (e instanceof SuitError) throw new KeyError('manifest_malformed', e.message);
      throw e;
    }
    return this.attachManifest(ownerId, glaze.id, envelope);
  }

  /** The owner's active (unrevoked) keys: what a metal's trust list holds. */
  activeKeys(ownerId: OwnerId): Promise<OperatorKey[]> {
    return this.store.list(ownerId, false);
  }

  /** The Glaze's signed envelope, if one is attached (the Glaze ID is the caller's to have checked). */
  findManifest(ownerId: OwnerId, glazeId: string): Promise<GlazeManifest | undefined> {
    return this.store.getManifest(ownerId, glazeId);
  }

  /** The signer (key) and sequence number of each of these Glazes' manifests, for a list of Glazes (T12). */
  async signersOf(ownerId: OwnerId, glazeIds: string[]): Promise<{ glazeId: string; sequenceNumber: string; createdAt: string; signedBy: OperatorKey }[]> {
    const found = await this.store.signersOf(ownerId, glazeIds);
    if (found.length === 0) return [];
    const keys = new Map((await this.store.list(ownerId, true)).map((k) => [k.id, k]));
    return found.flatMap((m) => {
      const k = keys.get(m.keyId);
      return k ? [{ glazeId: m.glazeId, sequenceNumber: m.sequenceNumber, createdAt: m.createdAt, signedBy: k }] : [];
    });
  }

  async getManifest(ownerId: OwnerId, glazeRef: string): Promise<GlazeManifest> {
    const glaze = await this.glazes.get(ownerId, glazeRef);
    const m = await this.store.getManifest(ownerId, glaze.id);
    if (!m) throw new KeyError('manifest_not_found', `Glaze "${glazeRef}" has no signed manifest yet`, 'glaze');
    return m;
  }
}
