/**
 * One DTLS 1.2 association (client or server side): the handshake state machine, flights and their
 * retransmission (RFC 6347 §4.2.4), epochs, the replay window and application data. It owns no socket:
 * datagrams come in through `receive` and go out through `hooks.send`.
 */
import { type KeyObject, X509Certificate, createECDH, createHash, randomBytes, sign, verify } from 'node:crypto';
import { verifyChain } from './certs.ts';
import { AlertDescription, DtlsError } from './errors.ts';
import {
  CipherSuite,
  ClientCertificateType,
  type ClientHello,
  ECDSA_SHA256,
  ExtensionType,
  type HandshakeFragment,
  HandshakeType,
  NamedGroup,
  Reassembler,
  decodeCertificate,
  decodeCertificateRequest,
  decodeClientHello,
  decodeClientKeyExchangeEcdhe,
  decodeClientKeyExchangePsk,
  decodeDigitallySigned,
  decodeFinished,
  decodeHandshakeFragments,
  decodeHelloVerifyRequest,
  decodePskIdentityHint,
  decodeServerHello,
  decodeServerKeyExchangeEcdhe,
  decodeU16List,
  encodeCertificate,
  encodeCertificateRequest,
  encodeClientHello,
  encodeClientKeyExchangeEcdhe,
  encodeClientKeyExchangePsk,
  encodeDigitallySigned,
  encodeEcdheParams,
  encodeHandshake,
  encodeServerHello,
  encodeServerKeyExchangeEcdhe,
  encodeU16List,
  fragmentHandshake,
} from './handshake.ts';
import { finishedVerifyData, keyBlock, masterSecret, pskPremaster } from './prf.ts';
import { type RecordKeys, openRecord, sealRecordInto, sealedLength } from './protection.ts';
import {
  ContentType,
  DTLS_1_0,
  DTLS_1_2,
  type DtlsRecord,
  MAX_SEQUENCE,
  RECORD_HEADER_LENGTH,
  decodeRecords,
  encodeRecord,
  writeRecordHeader,
} from './record.ts';
import { RecordState, ReplayWindow } from './replay.ts';
import type { PeerIdentity } from './transport-types.ts';
import { Writer, concat, equalBytes } from './wire.ts';

export interface SessionState {
  id: Uint8Array;
  masterSecret: Uint8Array;
  suite: number;
  extendedMasterSecret: boolean;
  identity: PeerIdentity;
}

export interface LocalCertificate {
  key: KeyObject;
  chain: Uint8Array[];
}

export interface ConnectionConfig {
  role: 'client' | 'server';
  /** Client: the identity and key it presents. */
  psk?: { identity: string; key: Uint8Array };
  /** Server: looks a PSK identity up (undefined = unknown identity). */
  pskLookup?: (identity: string) => Promise<Uint8Array | undefined>;
  certificate?: LocalCertificate;
  trustAnchors?: Uint8Array[];
  verifyPeer?: (chain: Uint8Array[]) => Promise<void>;
  /** Client: a session to resume (abbreviated handshake). */
  resume?: SessionState;
  /** Server: finds a session by ID for resumption. */
  findSession?: (id: Uint8Array) => SessionState | undefined;
  /** Largest datagram we send (RFC 6347 §4.1.1.1: stay under the path MTU). */
  mtu?: number;
  initialRetransmitMs?: number;
  maxRetransmitMs?: number;
  handshakeTimeoutMs?: number;
}

export interface ConnectionHooks {
  send(datagram: Uint8Array): void;
  data(d: Uint8Array): void;
  established(session: SessionState): void;
  closed(reason: DtlsError | undefined): void;
}

interface FlightMessage {
  kind: 'handshake' | 'ccs';
  epoch: number;
  msgType?: number;
  messageSeq?: number;
  body?: Uint8Array;
}

type State =
  | 'client_wait_hello' // sent ClientHello, wait for HelloVerifyRequest or ServerHello
  | 'client_wait_server_flight' // got ServerHello (full), wait for ...ServerHelloDone
  | 'client_wait_finished' // sent our Finished (full) or got ServerHello (abbreviated): wait for CCS + Finished
  | 'server_wait_client_flight' // sent ServerHello...ServerHelloDone, wait for [Certificate] ClientKeyExchange ...
  | 'server_wait_finished_abbreviated' // sent ServerHello, CCS, Finished: wait for client CCS + Finished
  | 'established'
  | 'closed';

const SUPPORTED = [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, CipherSuite.TLS_PSK_WITH_AES_128_CCM_8];
const te = new TextEncoder();
const td = new TextDecoder('utf-8', { fatal: true });

function ext(exts: { type: number; data: Uint8Array }[], type: number): Uint8Array | undefined {
  return exts.find((e) => e.type === type)?.data;
}

export class Connection {
  state: State;
  identity: PeerIdentity = { kind: 'none' };
  /** Epoch 1's write sequence, read window and last activity, shared with the native fast path (replay.ts). */
  readonly recordState = new RecordState();

  get lastActivity(): number {
    return this.recordState.f64[3] as number;
  }
  set lastActivity(ms: number) {
    this.recordState.f64[3] = ms;
  }

  // record layer
  private writeEpoch = 0;
  private readEpoch = 0;
  private writeSeq0 = 0; // epoch 0's; epoch 1's is recordState.f64[0]
  private writeKeys: RecordKeys | undefined;
  private readKeys: RecordKeys | undefined;
  private pendingWriteKeys: RecordKeys | undefined;
  private pendingReadKeys: RecordKeys | undefined;
  private replay = new ReplayWindow(this.recordState);

  // handshake
  private sendMessageSeq = 0;
  private recvMessageSeq = 0;
  private reassembly = new Map<number, Reassembler>();
  private queued = new Map<number, Uint8Array>();
  private transcript: Uint8Array[] = [];
  private flight: FlightMessage[] = [];
  private flightIsFinal = false;
  private retransmitMs: number;
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private work: Promise<void> = Promise.resolve();
  /** Jobs in `work` not finished yet (0: the fast path may run). */
  private queuedWork = 0;

  private clientRandom: Uint8Array = new Uint8Array(32);
  private serverRandom: Uint8Array = new Uint8Array(32);
  private sessionId: Uint8Array = new Uint8Array(0);
  private suite = 0;
  private ems = false;
  private master: Uint8Array | undefined;
  private ecdh: ReturnType<typeof createECDH> | undefined;
  private peerEcdhPoint: Uint8Array | undefined;
  private peerChain: Uint8Array[] | undefined;
  private certificateRequested = false;
  private clientHello: ClientHello | undefined;
  private resuming = false;

  constructor(
    private readonly cfg: ConnectionConfig,
    private readonly hooks: ConnectionHooks,
  ) {
    this.state = cfg.role === 'client' ? 'client_wait_hello' : 'server_wait_client_flight';
    this.retransmitMs = cfg.initialRetransmitMs ?? 1000;
    this.deadline = setTimeout(() => this.fail(new DtlsError('timeout', 'handshake did not complete in time')), cfg.handshakeTimeoutMs ?? 30_000);
    this.deadline.unref();
  }

  get established(): boolean {
    return this.state === 'established';
  }

  // ---- entry points --------------------------------------------------------------------------------

  /** Client: sends the first ClientHello. */
  start(): void {
    this.clientRandom = this.makeRandom();
    this.sendClientHello(new Uint8Array(0));
  }

  /**
   * Server: takes over after the stateless cookie check: `hello` is the verified ClientHello, `raw` its
   * encoded message (it opens the transcript), `recordSequence` the record sequence number it came in.
   */
  async acceptClientHello(hello: ClientHello, raw: Uint8Array, messageSeq: number, recordSequence: number): Promise<void> {
    this.recvMessageSeq = messageSeq + 1;
    this.sendMessageSeq = messageSeq;
    // The stateless HelloVerifyRequest went out with the first ClientHello's record sequence number
    // (RFC 6347 §4.2.1); continuing from this ClientHello's keeps our epoch-0 numbers from repeating it,
    // which a peer's replay window would drop (GnuTLS does: it then never sees our ServerHello).
    this.writeSeq0 = recordSequence;
    this.enqueue(async () => this.serverHello(hello, raw));
    await this.work;
  }

  receive(datagram: Uint8Array): Promise<void> {
    this.lastActivity = Date.now();
    if (this.state === 'established' && this.queuedWork === 0) {
      // Fast path: application data on an established session is handled synchronously (no promise per
      // record); anything else, or anything behind work still queued, keeps the ordered async queue.
      let records: DtlsRecord[];
      try {
        records = decodeRecords(datagram);
      } catch {
        return this.work; // malformed datagram: dropped (RFC 6347 §4.1.2.7)
      }
      let i = 0;
      for (; i < records.length; i++) {
        const rec = records[i] as DtlsRecord;
        if (this.state !== 'established' || rec.type !== ContentType.application_data || rec.epoch !== this.readEpoch || rec.epoch === 0) break;
        this.applicationData(rec);
      }
      if (i < records.length) {
        const rest = records.slice(i);
        this.enqueue(async () => {
          for (const rec of rest) {
            if (this.state === 'closed') return;
            await this.record(rec);
          }
        });
      }
      return this.work;
    }
    this.enqueue(async () => {
      let records: DtlsRecord[];
      try {
        records = decodeRecords(datagram);
      } catch {
        return; // malformed datagram: dropped (RFC 6347 §4.1.2.7)
      }
      for (const rec of records) {
        if (this.state === 'closed') return;
        await this.record(rec);
      }
    });
    return this.work;
  }

  /** An application_data record of the current read epoch on an established session (dropped unless it authenticates and is new). */
  private applicationData(rec: DtlsRecord): void {
    if (!this.readKeys || !this.replay.check(rec.sequence)) return;
    let payload: Uint8Array;
    try {
      payload = openRecord(this.readKeys, rec);
    } catch {
      return; // RFC 6347 §4.1.2.7: invalid records are dropped
    }
    this.replay.accept(rec.sequence);
    try {
      this.hooks.data(payload);
    } catch (e) {
      this.fail(new DtlsError('internal_error', (e as Error)?.message ?? String(e)));
    }
  }

  /**
   * What the native fast path needs to answer on this session (epoch-1 keys and salts, the shared record
   * state), or undefined unless the session is established with nothing queued. Secret: never logged.
   */
  offloadKeys(): { state: Uint8Array; epoch: number; readKeys: RecordKeys; writeKeys: RecordKeys } | undefined {
    if (this.state !== 'established' || this.queuedWork !== 0 || this.readEpoch !== 1 || this.writeEpoch !== 1 || !this.readKeys || !this.writeKeys) return undefined;
    return { state: this.recordState.bytes, epoch: 1, readKeys: this.readKeys, writeKeys: this.writeKeys };
  }

  async sendData(data: Uint8Array): Promise<void> {
    this.sendDataNow(data);
  }

  /** sendData without the promise: throws DtlsError('closed') unless established. */
  sendDataNow(data: Uint8Array): void {
    if (this.state !== 'established') throw new DtlsError('closed', 'DTLS session is not established');
    this.hooks.send(this.encodeRecord(ContentType.application_data, data));
  }

  close(): void {
    if (this.state === 'closed') return;
    if (this.writeEpoch > 0) this.sendAlert(1, AlertDescription.close_notify);
    this.shutdown(undefined);
  }

  // ---- record layer --------------------------------------------------------------------------------

  private enqueue(fn: () => Promise<void>): void {
    this.queuedWork++;
    this.work = this.work
      .then(fn)
      .catch((e: unknown) => {
        const err = e instanceof DtlsError ? e : new DtlsError('internal_error', (e as Error)?.message ?? String(e));
        this.fail(err);
      })
      .then(() => {
        this.queuedWork--;
      });
  }

  private encodeRecord(type: number, payload: Uint8Array, epoch = this.writeEpoch, version = DTLS_1_2): Uint8Array {
    const seqs = this.recordState.f64;
    const sequence = epoch === 0 ? this.writeSeq0 : (seqs[0] as number);
    if (sequence >= MAX_SEQUENCE) throw new DtlsError('internal_error', 'record sequence number exhausted');
    if (epoch === 0) this.writeSeq0 = sequence + 1;
    else seqs[0] = sequence + 1;
    const keys = epoch === 0 ? undefined : epoch === this.writeEpoch ? this.writeKeys : this.pendingWriteKeys;
    const head = { type, version, epoch, sequence };
    if (!keys) return encodeRecord({ ...head, fragment: payload });
    // Header and protected fragment written into one buffer (no intermediate fragment copy).
    const length = sealedLength(payload.length);
    const out = Buffer.allocUnsafe(RECORD_HEADER_LENGTH + length);
    writeRecordHeader(out, type, version, epoch, sequence, length);
    sealRecordInto(keys, head, payload, out, RECORD_HEADER_LENGTH);
    return out;
  }

  private async record(rec: DtlsRecord): Promise<void> {
    let payload = rec.fragment;
    if (rec.epoch !== this.readEpoch) {
      // A retransmitted epoch-0 flight after we moved on tells us our last flight was lost.
      if (rec.epoch === 0 && rec.type === ContentType.handshake && this.readEpoch === 1) this.peerRetransmitted();
      return;
    }
    if (rec.epoch > 0) {
      if (!this.readKeys || !this.replay.check(rec.sequence)) return;
      try {
        payload = openRecord(this.readKeys, rec);
      } catch (e) {
        // RFC 6347 §4.1.2.7: invalid records are dropped. During the handshake the only protected record is
        // Finished, and one that does not authenticate means a wrong key (a wrong PSK): refuse loudly.
        if (this.state !== 'established') throw e;
        return;
      }
      this.replay.accept(rec.sequence);
    }
    switch (rec.type) {
      case ContentType.handshake:
        return this.handshakeRecord(payload, rec.epoch);
      case ContentType.change_cipher_spec:
        return this.changeCipherSpec(payload);
      case ContentType.alert:
        return this.alert(payload);
      case ContentType.application_data:
        if (this.state === 'established' && rec.epoch > 0) this.hooks.data(payload);
        return;
    }
  }

  private alert(payload: Uint8Array): void {
    if (payload.length !== 2) return;
    const [level, desc] = payload as unknown as [number, number];
    if (desc === AlertDescription.close_notify) {
      this.shutdown(undefined);
      return;
    }
    if (level === 2) this.shutdown(new DtlsError('alert_received', `peer sent fatal alert ${desc}`));
  }

  private changeCipherSpec(payload: Uint8Array): void {
    if (payload.length !== 1 || payload[0] !== 1) throw new DtlsError('decode_error', 'ChangeCipherSpec is not the single byte 1');
    if (!this.pendingReadKeys) return; // early or repeated: the peer retransmits
    this.readKeys = this.pendingReadKeys;
    this.pendingReadKeys = undefined;
    this.readEpoch = 1;
    this.replay.reset();
  }

  sendAlert(level: 1 | 2, desc: number): void {
    try {
      this.hooks.send(this.encodeRecord(ContentType.alert, Uint8Array.of(level, desc)));
    } catch {
      // nothing more to say
    }
  }

  // ---- handshake messages --------------------------------------------------------------------------

  private async handshakeRecord(payload: Uint8Array, epoch: number): Promise<void> {
    const fragments = decodeHandshakeFragments(payload);
    for (const f of fragments) {
      if (this.state === 'established' && epoch > 0 && f.msgType === HandshakeType.client_hello) {
        this.sendAlert(1, AlertDescription.no_renegotiation); // renegotiation is not supported
        continue;
      }
      if (f.messageSeq < this.recvMessageSeq) {
        this.peerRetransmitted();
        continue;
      }
      if (f.messageSeq > this.recvMessageSeq + 10) continue; // too far ahead to buffer
      let r = this.reassembly.get(f.messageSeq);
      if (!r) {
        r = new Reassembler(f.msgType, f.length);
        this.reassembly.set(f.messageSeq, r);
      }
      r.add(f);
      if (r.complete && !this.queued.has(f.messageSeq)) this.queued.set(f.messageSeq, r.body);
    }
    for (;;) {
      const seq = this.recvMessageSeq;
      const body = this.queued.get(seq);
      const r = this.reassembly.get(seq);
      if (!body || !r) break;
      this.queued.delete(seq);
      this.reassembly.delete(seq);
      this.recvMessageSeq++;
      await this.message(r.msgType, seq, body);
      if (this.state === 'closed') return;
    }
  }

  private peerRetransmitted(): void {
    // RFC 6347 §4.2.4: a retransmission of the peer's previous flight means ours was lost.
    if (this.flight.length > 0 && (this.flightIsFinal || this.state !== 'established')) this.transmitFlight();
  }

  private async message(msgType: number, seq: number, body: Uint8Array): Promise<void> {
    const raw = encodeHandshake(msgType, seq, body);
    if (this.cfg.role === 'client') return this.clientMessage(msgType, body, raw);
    return this.serverMessage(msgType, body, raw);
  }

  private transcriptHash(): Uint8Array {
    const h = createHash('sha256');
    for (const m of this.transcript) h.update(m);
    return h.digest();
  }

  private queueMessage(msgType: number, body: Uint8Array, epoch = 0): void {
    const messageSeq = this.sendMessageSeq++;
    this.transcript.push(encodeHandshake(msgType, messageSeq, body));
    this.flight.push({ kind: 'handshake', epoch, msgType, messageSeq, body });
  }

  private queueCcs(): void {
    this.flight.push({ kind: 'ccs', epoch: 0 });
  }

  private newFlight(): void {
    this.flight = [];
    this.flightIsFinal = false;
    this.retransmitMs = this.cfg.initialRetransmitMs ?? 1000;
  }

  /** Sends the current flight packed into datagrams of at most `mtu` bytes. */
  private transmitFlight(): void {
    // libcoap's default MTU is 1152 (COAP_DEFAULT_MTU): stay under it.
    const mtu = this.cfg.mtu ?? 1152;
    const records: Uint8Array[] = [];
    for (const m of this.flight) {
      if (m.kind === 'ccs') {
        records.push(this.encodeRecord(ContentType.change_cipher_spec, Uint8Array.of(1), m.epoch));
        continue;
      }
      const overhead = 13 + (m.epoch > 0 ? 16 : 0);
      for (const frag of fragmentHandshake(m.msgType as number, m.messageSeq as number, m.body as Uint8Array, mtu - overhead)) {
        records.push(this.encodeRecord(ContentType.handshake, frag, m.epoch, DTLS_1_2));
      }
    }
    let datagram: Uint8Array[] = [];
    let size = 0;
    for (const r of records) {
      if (size + r.length > mtu && datagram.length > 0) {
        this.hooks.send(concat(...datagram));
        datagram = [];
        size = 0;
      }
      datagram.push(r);
      size += r.length;
    }
    if (datagram.length > 0) this.hooks.send(concat(...datagram));
  }

  /** Sends the flight and, unless it is the last one of the handshake, arms the retransmission timer. */
  private sendFlight(final: boolean): void {
    this.flightIsFinal = final;
    this.transmitFlight();
    this.clearTimer();
    if (!final) this.armTimer();
  }

  private armTimer(): void {
    this.timer = setTimeout(() => {
      if (this.state === 'closed' || this.state === 'established') return;
      this.retransmitMs = Math.min(this.retransmitMs * 2, this.cfg.maxRetransmitMs ?? 60_000);
      this.transmitFlight();
      this.armTimer();
    }, this.retransmitMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private makeRandom(): Uint8Array {
    const r = randomBytes(32);
    new DataView(r.buffer, r.byteOffset).setUint32(0, Math.floor(Date.now() / 1000));
    return r;
  }

  private deriveKeys(premaster: Uint8Array): void {
    const sessionHash = this.ems ? this.transcriptHash() : undefined;
    this.master = masterSecret(premaster, this.clientRandom, this.serverRandom, sessionHash);
    this.installKeys();
  }

  private installKeys(): void {
    const kb = keyBlock(this.master as Uint8Array, this.clientRandom, this.serverRandom);
    const client = { key: kb.clientWriteKey, salt: kb.clientWriteIv };
    const server = { key: kb.serverWriteKey, salt: kb.serverWriteIv };
    this.pendingWriteKeys = this.cfg.role === 'client' ? client : server;
    this.pendingReadKeys = this.cfg.role === 'client' ? server : client;
  }

  /** Adds CCS + Finished to the flight; the Finished goes out under the new write epoch. */
  private queueFinished(): void {
    this.queueCcs();
    const verifyData = finishedVerifyData(this.master as Uint8Array, this.cfg.role, this.transcriptHash());
    this.writeKeys = this.pendingWriteKeys;
    this.writeEpoch = 1;
    this.queueMessage(HandshakeType.finished, verifyData, 1);
  }

  private checkFinished(body: Uint8Array): void {
    const expected = finishedVerifyData(this.master as Uint8Array, this.cfg.role === 'client' ? 'server' : 'client', this.transcriptHash());
    if (!equalBytes(decodeFinished(body), expected)) throw new DtlsError('decrypt_error', 'Finished verify_data does not match');
  }

  private complete(): void {
    this.state = 'established';
    if (this.deadline) clearTimeout(this.deadline);
    this.clearTimer();
    this.reassembly.clear();
    this.queued.clear();
    this.hooks.established(this.session());
  }

  session(): SessionState {
    return {
      id: this.sessionId,
      masterSecret: this.master as Uint8Array,
      suite: this.suite,
      extendedMasterSecret: this.ems,
      identity: this.identity,
    };
  }

  private expectSuite(ecdhe: boolean): void {
    const is = this.suite === CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8;
    if (is !== ecdhe) throw new DtlsError('unexpected_message', 'handshake message does not belong to the negotiated cipher suite');
  }

  private async checkPeerChain(chain: Uint8Array[]): Promise<void> {
    if (chain.length === 0) throw new DtlsError('handshake_failure', 'peer sent no certificate');
    verifyChain(chain, this.cfg.trustAnchors ?? []);
    if (this.cfg.verifyPeer) {
      try {
        await this.cfg.verifyPeer(chain);
      } catch (e) {
        if (e instanceof DtlsError) throw e;
        throw new DtlsError('certificate_revoked', `peer certificate refused: ${(e as Error)?.message ?? e}`);
      }
    }
    this.peerChain = chain;
    this.identity = { kind: 'certificate', chain };
  }

  private verifySignature(chain: Uint8Array[], scheme: number, data: Uint8Array, signature: Uint8Array, what: string): void {
    if (scheme !== ECDSA_SHA256) throw new DtlsError('illegal_parameter', `${what}: signature scheme 0x${scheme.toString(16)}, expected 0x0403`);
    const key = new X509Certificate(chain[0] as Uint8Array).publicKey;
    let ok = false;
    try {
      ok = verify('sha256', data, { key, dsaEncoding: 'der' }, signature);
    } catch {
      ok = false;
    }
    if (!ok) throw new DtlsError('decrypt_error', `${what}: signature does not verify`);
  }

  // ---- server --------------------------------------------------------------------------------------

  private chooseSuite(hello: ClientHello): number {
    const canEcdhe =
      this.cfg.certificate !== undefined &&
      hello.cipherSuites.includes(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8) &&
      (() => {
        const groups = ext(hello.extensions, ExtensionType.supported_groups);
        return !groups || decodeU16List(groups, 'supported_groups').includes(NamedGroup.secp256r1);
      })();
    const canPsk = this.cfg.pskLookup !== undefined && hello.cipherSuites.includes(CipherSuite.TLS_PSK_WITH_AES_128_CCM_8);
    // A client offering PSK has a key for us; certificate suites are the fallback when it offers no PSK suite.
    if (canPsk) return CipherSuite.TLS_PSK_WITH_AES_128_CCM_8;
    if (canEcdhe) return CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8;
    throw new DtlsError('handshake_failure', 'no cipher suite in common (need 0xC0A8 or 0xC0AE)');
  }

  private async serverHello(hello: ClientHello, raw: Uint8Array): Promise<void> {
    // Version numbers count down (1.0 = 0xfeff, 1.2 = 0xfefd): a larger number is an older protocol.
    if (hello.clientVersion > DTLS_1_2) {
      throw new DtlsError('protocol_version', 'client does not offer DTLS 1.2');
    }
    if (!hello.compressionMethods.includes(0)) throw new DtlsError('decode_error', 'ClientHello lacks the null compression method');
    this.clientHello = hello;
    this.clientRandom = hello.random;
    this.serverRandom = this.makeRandom();
    this.transcript = [raw];
    this.newFlight();
    const offeredEms = ext(hello.extensions, ExtensionType.extended_master_secret) !== undefined;
    const secureReneg =
      hello.cipherSuites.includes(CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV) || ext(hello.extensions, ExtensionType.renegotiation_info) !== undefined;
    const extensions: { type: number; data: Uint8Array }[] = [];
    if (secureReneg) extensions.push({ type: ExtensionType.renegotiation_info, data: Uint8Array.of(0) });

    const cached = hello.sessionId.length > 0 ? this.cfg.findSession?.(hello.sessionId) : undefined;
    // RFC 7627 §5.3: resume only when the EMS status of the old and new handshakes agree.
    if (cached && hello.cipherSuites.includes(cached.suite) && cached.extendedMasterSecret === offeredEms) {
      this.resuming = true;
      this.sessionId = cached.id;
      this.suite = cached.suite;
      this.ems = cached.extendedMasterSecret;
      this.master = cached.masterSecret;
      this.identity = cached.identity;
      if (this.ems) extensions.push({ type: ExtensionType.extended_master_secret, data: new Uint8Array(0) });
      this.queueMessage(
        HandshakeType.server_hello,
        encodeServerHello({ serverVersion: DTLS_1_2, random: this.serverRandom, sessionId: this.sessionId, cipherSuite: this.suite, compressionMethod: 0, extensions }),
      );
      this.installKeys();
      this.queueFinished();
      this.state = 'server_wait_finished_abbreviated';
      this.sendFlight(false);
      return;
    }

    this.suite = this.chooseSuite(hello);
    this.ems = offeredEms;
    this.sessionId = randomBytes(32);
    if (this.ems) extensions.push({ type: ExtensionType.extended_master_secret, data: new Uint8Array(0) });
    const ecdhe = this.suite === CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8;
    if (ecdhe && ext(hello.extensions, ExtensionType.ec_point_formats)) {
      extensions.push({ type: ExtensionType.ec_point_formats, data: Uint8Array.of(1, 0) });
    }
    this.queueMessage(
      HandshakeType.server_hello,
      encodeServerHello({ serverVersion: DTLS_1_2, random: this.serverRandom, sessionId: this.sessionId, cipherSuite: this.suite, compressionMethod: 0, extensions }),
    );
    if (ecdhe) {
      const cert = this.cfg.certificate as LocalCertificate;
      this.queueMessage(HandshakeType.certificate, encodeCertificate(cert.chain));
      this.ecdh = createECDH('prime256v1');
      this.ecdh.generateKeys();
      const params = encodeEcdheParams({ namedCurve: NamedGroup.secp256r1, point: this.ecdh.getPublicKey() });
      const signature = sign('sha256', concat(this.clientRandom, this.serverRandom, params), { key: cert.key, dsaEncoding: 'der' });
      this.queueMessage(HandshakeType.server_key_exchange, encodeServerKeyExchangeEcdhe(params, ECDSA_SHA256, signature));
      if (this.cfg.trustAnchors && this.cfg.trustAnchors.length > 0) {
        this.certificateRequested = true;
        this.queueMessage(
          HandshakeType.certificate_request,
          encodeCertificateRequest({ certificateTypes: Uint8Array.of(ClientCertificateType.ecdsa_sign), signatureSchemes: [ECDSA_SHA256], authorities: [] }),
        );
      }
    }
    this.queueMessage(HandshakeType.server_hello_done, new Uint8Array(0));
    this.state = 'server_wait_client_flight';
    this.sendFlight(false);
  }

  private async serverMessage(msgType: number, body: Uint8Array, raw: Uint8Array): Promise<void> {
    if (this.state === 'server_wait_finished_abbreviated') {
      if (msgType !== HandshakeType.finished) throw new DtlsError('unexpected_message', `expected Finished, got ${msgType}`);
      this.checkFinished(body);
      this.transcript.push(raw);
      this.complete();
      return;
    }
    if (this.state !== 'server_wait_client_flight') throw new DtlsError('unexpected_message', `unexpected handshake message ${msgType}`);
    const ecdhe = this.suite === CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8;
    switch (msgType) {
      case HandshakeType.certificate: {
        if (!this.certificateRequested || this.peerChain) throw new DtlsError('unexpected_message', 'unrequested Certificate');
        const chain = decodeCertificate(body);
        if (chain.length === 0) throw new DtlsError('handshake_failure', 'client sent no certificate; one is required');
        await this.checkPeerChain(chain);
        this.transcript.push(raw);
        return;
      }
      case HandshakeType.client_key_exchange: {
        if (this.master) throw new DtlsError('unexpected_message', 'second ClientKeyExchange');
        if (this.certificateRequested && !this.peerChain) throw new DtlsError('handshake_failure', 'client sent no certificate; one is required');
        let premaster: Uint8Array;
        if (ecdhe) {
          const point = decodeClientKeyExchangeEcdhe(body);
          try {
            premaster = (this.ecdh as ReturnType<typeof createECDH>).computeSecret(point);
          } catch {
            throw new DtlsError('illegal_parameter', 'ClientKeyExchange: not a point on secp256r1');
          }
        } else {
          let identity: string;
          try {
            identity = td.decode(decodeClientKeyExchangePsk(body));
          } catch (e) {
            if (e instanceof DtlsError) throw e;
            throw new DtlsError('unknown_psk_identity', 'PSK identity is not UTF-8');
          }
          const key = await (this.cfg.pskLookup as NonNullable<ConnectionConfig['pskLookup']>)(identity);
          if (!key) throw new DtlsError('unknown_psk_identity', 'unknown PSK identity');
          premaster = pskPremaster(key);
          this.identity = { kind: 'psk', identity };
        }
        this.transcript.push(raw);
        this.deriveKeys(premaster);
        return;
      }
      case HandshakeType.certificate_verify: {
        if (!this.peerChain || !this.master) throw new DtlsError('unexpected_message', 'CertificateVerify out of order');
        const { scheme, signature } = decodeDigitallySigned(body, 'CertificateVerify');
        this.verifySignature(this.peerChain, scheme, concat(...this.transcript), signature, 'CertificateVerify');
        this.transcript.push(raw);
        return;
      }
      case HandshakeType.finished: {
        if (!this.master) throw new DtlsError('unexpected_message', 'Finished before ClientKeyExchange');
        if (this.certificateRequested && this.transcript.length > 0) {
          const last = this.transcript[this.transcript.length - 1] as Uint8Array;
          if (last[0] !== HandshakeType.certificate_verify) throw new DtlsError('unexpected_message', 'Finished without CertificateVerify');
        }
        this.checkFinished(body);
        this.transcript.push(raw);
        this.newFlight();
        this.queueFinished();
        this.complete();
        this.sendFlight(true);
        return;
      }
      default:
        throw new DtlsError('unexpected_message', `unexpected handshake message ${msgType}`);
    }
  }

  // ---- client --------------------------------------------------------------------------------------

  private sendClientHello(cookie: Uint8Array): void {
    const wantsCert = this.cfg.certificate !== undefined || (this.cfg.psk === undefined && (this.cfg.trustAnchors?.length ?? 0) > 0);
    const suites: number[] = [];
    if (this.cfg.psk) suites.push(CipherSuite.TLS_PSK_WITH_AES_128_CCM_8);
    if (wantsCert) suites.push(CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8);
    suites.push(CipherSuite.TLS_EMPTY_RENEGOTIATION_INFO_SCSV);
    const extensions: { type: number; data: Uint8Array }[] = [{ type: ExtensionType.extended_master_secret, data: new Uint8Array(0) }];
    if (wantsCert) {
      extensions.push(
        { type: ExtensionType.supported_groups, data: encodeU16List([NamedGroup.secp256r1]) },
        { type: ExtensionType.ec_point_formats, data: Uint8Array.of(1, 0) },
        { type: ExtensionType.signature_algorithms, data: encodeU16List([ECDSA_SHA256]) },
      );
    }
    const sessionId = this.cfg.resume?.id ?? new Uint8Array(0);
    const hello: ClientHello = {
      clientVersion: DTLS_1_2,
      random: this.clientRandom,
      sessionId,
      cookie,
      cipherSuites: suites,
      compressionMethods: Uint8Array.of(0),
      extensions,
    };
    this.clientHello = hello;
    this.newFlight();
    this.transcript = [];
    this.queueMessage(HandshakeType.client_hello, encodeClientHello(hello));
    this.state = 'client_wait_hello';
    this.sendFlight(false);
  }

  private async clientMessage(msgType: number, body: Uint8Array, raw: Uint8Array): Promise<void> {
    switch (this.state) {
      case 'client_wait_hello': {
        if (msgType === HandshakeType.hello_verify_request) {
          const { cookie } = decodeHelloVerifyRequest(body);
          // RFC 6347 §4.2.1: the HelloVerifyRequest and the first ClientHello are not in the transcript.
          this.sendClientHello(cookie);
          return;
        }
        if (msgType !== HandshakeType.server_hello) throw new DtlsError('unexpected_message', `expected ServerHello, got ${msgType}`);
        const sh = decodeServerHello(body);
        if (sh.serverVersion !== DTLS_1_2) throw new DtlsError('protocol_version', 'server did not choose DTLS 1.2');
        const offered = this.clientHello?.cipherSuites ?? [];
        if (!SUPPORTED.includes(sh.cipherSuite as (typeof SUPPORTED)[number]) || !offered.includes(sh.cipherSuite)) {
          throw new DtlsError('illegal_parameter', `server chose cipher suite 0x${sh.cipherSuite.toString(16)} we did not offer`);
        }
        if (sh.compressionMethod !== 0) throw new DtlsError('illegal_parameter', 'server chose compression');
        this.serverRandom = sh.random;
        this.suite = sh.cipherSuite;
        this.ems = ext(sh.extensions, ExtensionType.extended_master_secret) !== undefined;
        this.transcript.push(raw);
        const resume = this.cfg.resume;
        if (resume && sh.sessionId.length > 0 && equalBytes(sh.sessionId, resume.id)) {
          if (resume.suite !== sh.cipherSuite || resume.extendedMasterSecret !== this.ems) {
            throw new DtlsError('handshake_failure', 'resumed session changes cipher suite or extended master secret');
          }
          this.resuming = true;
          this.sessionId = resume.id;
          this.master = resume.masterSecret;
          this.identity = resume.identity;
          this.installKeys();
          this.state = 'client_wait_finished';
          return;
        }
        this.sessionId = sh.sessionId;
        this.state = 'client_wait_server_flight';
        return;
      }
      case 'client_wait_server_flight':
        return this.clientServerFlight(msgType, body, raw);
      case 'client_wait_finished': {
        if (msgType !== HandshakeType.finished) throw new DtlsError('unexpected_message', `expected Finished, got ${msgType}`);
        this.checkFinished(body);
        this.transcript.push(raw);
        if (this.resuming) {
          this.newFlight();
          this.queueFinished();
          this.complete();
          this.sendFlight(true);
          return;
        }
        this.complete();
        return;
      }
      default:
        throw new DtlsError('unexpected_message', `unexpected handshake message ${msgType}`);
    }
  }

  private async clientServerFlight(msgType: number, body: Uint8Array, raw: Uint8Array): Promise<void> {
    const ecdhe = this.suite === CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8;
    switch (msgType) {
      case HandshakeType.certificate: {
        this.expectSuite(true);
        await this.checkPeerChain(decodeCertificate(body));
        this.transcript.push(raw);
        return;
      }
      case HandshakeType.server_key_exchange: {
        if (ecdhe) {
          if (!this.peerChain) throw new DtlsError('unexpected_message', 'ServerKeyExchange before Certificate');
          const ske = decodeServerKeyExchangeEcdhe(body);
          if (ske.params.namedCurve !== NamedGroup.secp256r1) throw new DtlsError('illegal_parameter', 'server curve is not secp256r1');
          this.verifySignature(this.peerChain, ske.signatureScheme, concat(this.clientRandom, this.serverRandom, ske.paramsBytes), ske.signature, 'ServerKeyExchange');
          this.peerEcdhPoint = ske.params.point;
        } else {
          decodePskIdentityHint(body); // a hint is allowed and ignored (RFC 7925 §4.2)
        }
        this.transcript.push(raw);
        return;
      }
      case HandshakeType.certificate_request: {
        this.expectSuite(true);
        const req = decodeCertificateRequest(body);
        if (!req.signatureSchemes.includes(ECDSA_SHA256)) throw new DtlsError('handshake_failure', 'server does not accept ecdsa_secp256r1_sha256');
        this.certificateRequested = true;
        this.transcript.push(raw);
        return;
      }
      case HandshakeType.server_hello_done: {
        if (body.length !== 0) throw new DtlsError('decode_error', 'ServerHelloDone is not empty');
        this.transcript.push(raw);
        return this.clientKeyExchange(ecdhe);
      }
      default:
        throw new DtlsError('unexpected_message', `unexpected handshake message ${msgType}`);
    }
  }

  private clientKeyExchange(ecdhe: boolean): void {
    this.newFlight();
    let premaster: Uint8Array;
    if (ecdhe) {
      if (!this.peerEcdhPoint) throw new DtlsError('unexpected_message', 'ServerHelloDone before ServerKeyExchange');
      if (this.certificateRequested) this.queueMessage(HandshakeType.certificate, encodeCertificate(this.cfg.certificate?.chain ?? []));
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      try {
        premaster = ecdh.computeSecret(this.peerEcdhPoint);
      } catch {
        throw new DtlsError('illegal_parameter', 'ServerKeyExchange: not a point on secp256r1');
      }
      this.queueMessage(HandshakeType.client_key_exchange, encodeClientKeyExchangeEcdhe(ecdh.getPublicKey()));
    } else {
      const psk = this.cfg.psk;
      if (!psk) throw new DtlsError('handshake_failure', 'server chose PSK but we have none');
      this.identity = { kind: 'psk', identity: psk.identity };
      premaster = pskPremaster(psk.key);
      this.queueMessage(HandshakeType.client_key_exchange, encodeClientKeyExchangePsk(te.encode(psk.identity)));
    }
    this.deriveKeys(premaster);
    if (ecdhe && this.certificateRequested && this.cfg.certificate) {
      const signature = sign('sha256', concat(...this.transcript), { key: this.cfg.certificate.key, dsaEncoding: 'der' });
      this.queueMessage(HandshakeType.certificate_verify, encodeDigitallySigned(ECDSA_SHA256, signature));
    }
    this.queueFinished();
    this.state = 'client_wait_finished';
    this.sendFlight(false);
  }

  // ---- teardown ------------------------------------------------------------------------------------

  private fail(err: DtlsError): void {
    if (this.state === 'closed') return;
    const alert = err.alert;
    // A wrong key shows as a Finished that does not authenticate; say so with a fatal alert (RFC 6347 §4.1.2.7).
    if (alert !== undefined) this.sendAlert(2, alert);
    this.shutdown(err);
  }

  private shutdown(err: DtlsError | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.clearTimer();
    if (this.deadline) clearTimeout(this.deadline);
    this.hooks.closed(err);
  }
}

/** Parses the first handshake message of a datagram if it is an unfragmented epoch-0 ClientHello. */
export function peekClientHello(datagram: Uint8Array): { hello: ClientHello; raw: Uint8Array; record: DtlsRecord; fragment: HandshakeFragment } | undefined {
  const records = decodeRecords(datagram);
  const record = records[0];
  if (record?.epoch !== 0 || record.type !== ContentType.handshake) return undefined;
  const fragment = decodeHandshakeFragments(record.fragment)[0];
  if (!fragment || fragment.msgType !== HandshakeType.client_hello) return undefined;
  // Fragmented ClientHellos are refused: a stateless server cannot reassemble them (RFC 6347 §4.2.1 allows this).
  if (fragment.fragmentOffset !== 0 || fragment.body.length !== fragment.length) return undefined;
  const hello = decodeClientHello(fragment.body);
  return { hello, raw: encodeHandshake(HandshakeType.client_hello, fragment.messageSeq, fragment.body), record, fragment };
}

/** The stateless HelloVerifyRequest datagram, echoing the ClientHello's record sequence (RFC 6347 §4.2.1). */
export function helloVerifyRequestDatagram(recordSequence: number, cookie: Uint8Array): Uint8Array {
  const body = new Writer().u16(DTLS_1_0).vector(1, cookie).finish();
  return encodeRecord({
    type: ContentType.handshake,
    version: DTLS_1_0,
    epoch: 0,
    sequence: recordSequence,
    fragment: encodeHandshake(HandshakeType.hello_verify_request, 0, body),
  });
}
