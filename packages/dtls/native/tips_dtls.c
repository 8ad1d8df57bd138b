/*
 * @tips/dtls native socket (issue 12, block-wise speed): the DTLS server's UDP socket, and the Block2
 * continuation fast path.
 *
 * 1. The socket: socket/bind here, a uv_poll_t on Node's own loop, recvmmsg batches. Every datagram the
 *    fast path does not take is handed to JS unchanged (bytes, address, port) — the protocol code
 *    (record layer, handshakes, CoAP) stays in TypeScript. Sends from JS go out through sendto here.
 * 2. The fast path: for a peer whose CoAP layer asked for it (an "offload", set from JS after JS itself
 *    answered a 2.05 block of an in-memory representation), a datagram that is exactly one epoch-1
 *    application_data record, new to the replay window, authentic (AES-128-CCM-8), carrying a CoAP CON
 *    GET whose options equal the offload's (Block2 aside), without payload, asking for a block that is
 *    not the last one, before the offload's deadline, is answered here: replay bit committed, the ACK
 *    built byte for byte as packages/coap/src/server.ts would build it, sealed with the next write
 *    sequence number, sent. Anything else goes to JS untouched (nothing committed).
 *
 * The write sequence number, the replay window and the last activity live in a 32-byte buffer shared
 * with the JS Connection (single thread: this runs in the uv_poll callback on the main thread), so
 * neither side ever reuses a sequence number or accepts a replayed record the other has seen.
 * Layout (host-endian, as a Float64Array/Uint32Array sees it):
 *   f64 @0  next write sequence number of epoch 1
 *   f64 @8  replay window top (highest accepted sequence, -1 = none)
 *   u32 @16 window bits 0..31 (bit i: top - i seen)      u32 @20 bits 32..63
 *   f64 @24 last activity (ms since the Unix epoch)
 *
 * No allocation per datagram, every length field bounds-checked, nothing secret logged or returned.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define BATCH 16
#define RECV_BYTES 65536
#define MAX_OPTS 512          /* canonical request options / response option prefix, bytes */
#define MAX_PLAINTEXT 1536    /* a request record's plaintext we decrypt here */
#define OUT_BYTES 4096        /* one answer: header 13 + nonce 8 + CoAP (≤ 4+8+512+16+1+1024) + tag 8 */
#define SHARED_BYTES 32
#define MAX_SEQUENCE 281474976710655.0 /* 2^48 - 1 */
#define OPT_BLOCK2 23
#define OPT_SIZE2 28
#define MAX_OFFLOAD_MS 60000.0 /* a hard bound on any offload (the master asks for ≤ 1 s) */

typedef struct {
  int used;
  struct sockaddr_storage addr;
  socklen_t addrlen;
  /* session */
  napi_ref state_ref;
  uint8_t *state;
  uint16_t epoch;
  EVP_CIPHER_CTX *rd, *wr; /* allocated once per slot */
  uint8_t rd_key[16], wr_key[16]; /* given again with each nonce: OpenSSL 3.0's CCM decryption needs the key re-set per message */
  uint8_t rd_salt[4], wr_salt[4];
  /* offload */
  uint8_t req_opts[MAX_OPTS];
  size_t req_opts_len;
  uint8_t resp_prefix[MAX_OPTS];
  size_t resp_prefix_len;
  uint32_t resp_last; /* number of the prefix's last option (< 23) */
  uint8_t code;
  uint8_t max_szx;
  napi_ref payload_ref;
  const uint8_t *payload;
  size_t payload_len;
  double deadline; /* CLOCK_MONOTONIC ms */
} slot_t;

typedef struct {
  napi_env env;
  int fd;
  int family;
  int closing;
  int poll_closed, finalized; /* the memory goes when both the poll handle and the JS handle are gone */
  uv_poll_t poll;
  napi_ref cb_ref;
  napi_async_context actx;
  slot_t *slots;
  int max_slots;
  int active;
  size_t max_bytes;
  size_t bytes_held;
  struct {
    double served, passed, started, cancelled, expired, dropped, refused;
    /* why a datagram from an offloaded peer went to JS: record shape/epoch/replay, authentication, CoAP, options, block */
    double not_record, not_auth, not_coap, not_options, not_block;
  } n;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_storage from[BATCH];
  uint8_t *bufs;
  uint8_t pt[MAX_PLAINTEXT];
  uint8_t canon[MAX_OPTS];
  uint8_t out[OUT_BYTES];
} sock_t;

/* ---- small helpers ------------------------------------------------------------------------------ */

static double clock_ms(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)(ts.tv_nsec / 1000000);
}
/* Wall clock (Date.now's) for the shared last activity; the monotonic clock for deadlines, so a clock step cannot stretch one. */
static double now_ms(void) { return clock_ms(CLOCK_REALTIME); }
static double mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

static double get_f64(const uint8_t *p) {
  double d;
  memcpy(&d, p, 8);
  return d;
}
static void set_f64(uint8_t *p, double d) { memcpy(p, &d, 8); }
static uint32_t get_u32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static void set_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* RFC 6347 §4.1.2.6, the same arithmetic as replay.ts (64-record window). */
static int replay_check(const uint8_t *st, double seq) {
  double top = get_f64(st + 8);
  if (seq > top) return 1;
  double d = top - seq;
  if (d >= 64) return 0;
  unsigned k = (unsigned)d;
  uint64_t bits = ((uint64_t)get_u32(st + 20) << 32) | get_u32(st + 16);
  return ((bits >> k) & 1) == 0;
}

static void replay_accept(uint8_t *st, double seq) {
  double top = get_f64(st + 8);
  uint64_t bits = ((uint64_t)get_u32(st + 20) << 32) | get_u32(st + 16);
  if (seq > top) {
    double shift = seq - top;
    bits = shift >= 64 ? 1 : ((bits << (unsigned)shift) | 1);
    set_f64(st + 8, seq);
  } else {
    double d = top - seq;
    if (d >= 64) return;
    bits |= (uint64_t)1 << (unsigned)d;
  }
  set_u32(st + 16, (uint32_t)bits);
  set_u32(st + 20, (uint32_t)(bits >> 32));
}

static int same_addr(const struct sockaddr_storage *a, socklen_t alen, const struct sockaddr_storage *b, socklen_t blen) {
  if (a->ss_family != b->ss_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
  }
  (void)alen;
  (void)blen;
  return 0;
}

static slot_t *find_slot(sock_t *s, const struct sockaddr_storage *a, socklen_t alen) {
  for (int i = 0; i < s->max_slots; i++) {
    slot_t *o = &s->slots[i];
    if (o->used && same_addr(&o->addr, o->addrlen, a, alen)) return o;
  }
  return NULL;
}

/* Bytes of payload held: each distinct buffer once (a fleet fetching one firmware shares it). */
static size_t payload_shared(sock_t *s, const slot_t *except, const uint8_t *p) {
  for (int i = 0; i < s->max_slots; i++) {
    const slot_t *o = &s->slots[i];
    if (o != except && o->used && o->payload == p) return 1;
  }
  return 0;
}

static void release_slot(sock_t *s, slot_t *o) {
  if (!o->used) return;
  if (!payload_shared(s, o, o->payload)) s->bytes_held -= o->payload_len;
  if (o->payload_ref) napi_delete_reference(s->env, o->payload_ref);
  if (o->state_ref) napi_delete_reference(s->env, o->state_ref);
  o->payload_ref = NULL;
  o->state_ref = NULL;
  o->payload = NULL;
  o->state = NULL;
  OPENSSL_cleanse(o->rd_key, sizeof o->rd_key);
  OPENSSL_cleanse(o->wr_key, sizeof o->wr_key);
  o->used = 0;
  s->active--;
  /* The slot's EVP contexts stay allocated for the next offload; their keys are overwritten then. */
}

/* ---- AES-128-CCM-8 (RFC 6655) with EVP ------------------------------------------------------------ */

static int ccm_key(EVP_CIPHER_CTX **ctx, const uint8_t *key, int enc) {
  if (!*ctx) *ctx = EVP_CIPHER_CTX_new();
  if (!*ctx) return 0;
  EVP_CIPHER_CTX_reset(*ctx);
  if (EVP_CipherInit_ex(*ctx, EVP_aes_128_ccm(), NULL, NULL, NULL, enc) != 1) return 0;
  if (EVP_CIPHER_CTX_ctrl(*ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) != 1) return 0;
  if (enc && EVP_CIPHER_CTX_ctrl(*ctx, EVP_CTRL_AEAD_SET_TAG, 8, NULL) != 1) return 0;
  return EVP_CipherInit_ex(*ctx, NULL, NULL, key, NULL, enc) == 1;
}

/* aad: seq_num(8) ‖ type ‖ version(2) ‖ length(2) */
static int ccm_open(EVP_CIPHER_CTX *c, const uint8_t key[16], const uint8_t nonce[12], const uint8_t aad[13], const uint8_t *ct, int n, const uint8_t tag[8], uint8_t *pt) {
  int l;
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, 8, (void *)tag) != 1) return 0;
  if (EVP_DecryptInit_ex(c, NULL, NULL, key, nonce) != 1) return 0;
  if (EVP_DecryptUpdate(c, NULL, &l, NULL, n) != 1) return 0;
  if (EVP_DecryptUpdate(c, NULL, &l, aad, 13) != 1) return 0;
  return EVP_DecryptUpdate(c, pt, &l, ct, n) == 1; /* 1 only when the tag verifies (EVP compares) */
}

static int ccm_seal(EVP_CIPHER_CTX *c, const uint8_t key[16], const uint8_t nonce[12], const uint8_t aad[13], uint8_t *buf, int n, uint8_t tag[8]) {
  int l, f;
  if (EVP_EncryptInit_ex(c, NULL, NULL, key, nonce) != 1) return 0;
  if (EVP_EncryptUpdate(c, NULL, &l, NULL, n) != 1) return 0;
  if (EVP_EncryptUpdate(c, NULL, &l, aad, 13) != 1) return 0;
  if (EVP_EncryptUpdate(c, buf, &l, buf, n) != 1) return 0;
  if (EVP_EncryptFinal_ex(c, buf + l, &f) != 1) return 0;
  return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 8, tag) == 1;
}

/* ---- CoAP ------------------------------------------------------------------------------------------ */

/* Option header + extensions for (delta, length) as message.ts writes them; returns bytes written or 0. */
static size_t put_opt_head(uint8_t *p, size_t room, uint32_t delta, uint32_t len) {
  uint8_t dn = (uint8_t)(delta < 13 ? delta : delta < 269 ? 13 : 14);
  uint8_t ln = (uint8_t)(len < 13 ? len : len < 269 ? 13 : 14);
  size_t need = 1 + (dn == 13 ? 1 : dn == 14 ? 2 : 0) + (ln == 13 ? 1 : ln == 14 ? 2 : 0);
  if (need > room) return 0;
  size_t k = 0;
  p[k++] = (uint8_t)(dn << 4 | ln);
  if (dn == 13) p[k++] = (uint8_t)(delta - 13);
  else if (dn == 14) {
    p[k++] = (uint8_t)((delta - 269) >> 8);
    p[k++] = (uint8_t)(delta - 269);
  }
  if (ln == 13) p[k++] = (uint8_t)(len - 13);
  else if (ln == 14) {
    p[k++] = (uint8_t)((len - 269) >> 8);
    p[k++] = (uint8_t)(len - 269);
  }
  return k;
}

/* Minimal big-endian uint (RFC 7252 §3.2); returns its length (0 for zero). */
static size_t put_uint(uint8_t *p, uint32_t v) {
  uint8_t tmp[4];
  size_t n = 0;
  while (v) {
    tmp[n++] = (uint8_t)v;
    v >>= 8;
  }
  for (size_t i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
  return n;
}

typedef struct {
  const uint8_t *token;
  uint8_t tkl;
  uint16_t mid;
  int have_block2;
  uint32_t block2;
  size_t canon_len;
} coap_req_t;

/*
 * Parses a CoAP message with the rules of message.ts's decodeMessage, keeps only a CON GET without
 * payload, and writes its options except Block2 re-encoded (deltas recomputed) into `canon`.
 * 0 = not for the fast path (JS decides what to do with it).
 */
static int parse_get(const uint8_t *m, size_t n, uint8_t *canon, coap_req_t *r) {
  if (n < 4) return 0;
  if ((m[0] >> 6) != 1) return 0;             /* version 1 */
  if (((m[0] >> 4) & 3) != 0) return 0;        /* CON */
  r->tkl = m[0] & 0x0f;
  if (r->tkl > 8) return 0;
  if (m[1] != 1) return 0;                     /* 0.01 GET */
  r->mid = (uint16_t)(m[2] << 8 | m[3]);
  if (n < 4u + r->tkl) return 0;
  r->token = m + 4;
  size_t pos = 4 + r->tkl;
  uint32_t number = 0, last_kept = 0;
  size_t c = 0;
  r->have_block2 = 0;
  while (pos < n) {
    uint8_t head = m[pos++];
    if (head == 0xff) return 0;                /* a payload: not a block request */
    uint32_t delta = head >> 4, len = head & 0x0f;
    if (delta == 15 || len == 15) return 0;
    if (delta == 13) {
      if (pos + 1 > n) return 0;
      delta = 13u + m[pos++];
    } else if (delta == 14) {
      if (pos + 2 > n) return 0;
      delta = 269u + ((uint32_t)m[pos] << 8 | m[pos + 1]);
      pos += 2;
    }
    if (len == 13) {
      if (pos + 1 > n) return 0;
      len = 13u + m[pos++];
    } else if (len == 14) {
      if (pos + 2 > n) return 0;
      len = 269u + ((uint32_t)m[pos] << 8 | m[pos + 1]);
      pos += 2;
    }
    number += delta;
    if (number > 0xffff) return 0;
    if (len > n - pos) return 0;
    const uint8_t *v = m + pos;
    pos += len;
    if (number == OPT_BLOCK2) {
      if (r->have_block2 || len > 3) return 0; /* a second Block2, or one too long: JS says what */
      uint32_t b = 0;
      for (uint32_t i = 0; i < len; i++) b = b << 8 | v[i];
      r->have_block2 = 1;
      r->block2 = b;
      continue;
    }
    size_t h = put_opt_head(canon + c, MAX_OPTS - c, number - last_kept, len);
    if (h == 0 || len > MAX_OPTS - c - h) return 0;
    c += h;
    memcpy(canon + c, v, len);
    c += len;
    last_kept = number;
  }
  r->canon_len = c;
  return r->have_block2;
}

/* ---- the fast path -------------------------------------------------------------------------------- */

static int fast_path(sock_t *s, const uint8_t *d, size_t n, const struct sockaddr_storage *from, socklen_t fromlen) {
  if (s->active == 0) return 0;
  /* exactly one DTLS 1.2 application_data record with room for nonce and tag */
  if (n < 13 + 8 + 8 + 4 || d[0] != 23 || d[1] != 0xfe || d[2] != 0xfd) return 0;
  size_t flen = (size_t)d[11] << 8 | d[12];
  if (13 + flen != n) return 0;
  slot_t *o = find_slot(s, from, fromlen);
  if (!o) return 0;
  if (!(mono_ms() < o->deadline)) {
    release_slot(s, o);
    s->n.expired++;
    return 0;
  }
  double now = now_ms();
  s->n.not_record++; /* counted as a refusal until it passes this stage (undone below) */
  uint16_t epoch = (uint16_t)(d[3] << 8 | d[4]);
  if (epoch != o->epoch) return 0;
  double seq = (double)((uint64_t)d[5] << 40 | (uint64_t)d[6] << 32 | (uint64_t)d[7] << 24 | (uint64_t)d[8] << 16 | (uint64_t)d[9] << 8 | d[10]);
  if (!replay_check(o->state, seq)) return 0;
  size_t ctlen = flen - 16;
  if (ctlen > MAX_PLAINTEXT) return 0;
  uint8_t nonce[12], aad[13];
  memcpy(nonce, o->rd_salt, 4);
  memcpy(nonce + 4, d + 13, 8);
  memcpy(aad, d + 3, 8);
  aad[8] = 23;
  aad[9] = 0xfe;
  aad[10] = 0xfd;
  aad[11] = (uint8_t)(ctlen >> 8);
  aad[12] = (uint8_t)ctlen;
  s->n.not_record--;
  if (!ccm_open(o->rd, o->rd_key, nonce, aad, d + 21, (int)ctlen, d + n - 8, s->pt)) {
    s->n.not_auth++;
    return 0;
  }

  coap_req_t r;
  if (!parse_get(s->pt, ctlen, s->canon, &r)) {
    s->n.not_coap++;
    return 0;
  }
  if (r.canon_len != o->req_opts_len || memcmp(s->canon, o->req_opts, r.canon_len) != 0) {
    s->n.not_options++;
    return 0;
  }
  s->n.not_block++; /* undone once the block is served */
  uint32_t szx_req = r.block2 & 7;
  if (szx_req == 7) return 0;
  uint32_t num_req = r.block2 >> 4;
  uint32_t szx = szx_req < o->max_szx ? szx_req : o->max_szx;
  uint64_t bsize = (uint64_t)1 << (szx + 4);
  uint64_t offset = (uint64_t)num_req << (szx_req + 4);
  if (offset >= o->payload_len) return 0;
  uint64_t chunk = o->payload_len - offset < bsize ? o->payload_len - offset : bsize;
  if (offset + chunk >= o->payload_len) return 0; /* the last block goes through JS (it completes the transfer) */
  uint64_t num = offset / bsize;
  if (num > 0xfffff) return 0;
  uint32_t seqw_ok = get_f64(o->state) < MAX_SEQUENCE;
  if (!seqw_ok) return 0;

  /* The ACK, as server.ts encodes it: header, token, the response's options < 23, Block2, Size2, payload. */
  uint8_t *p = s->out + 13 + 8;
  size_t k = 0;
  p[k++] = (uint8_t)(0x60 | r.tkl); /* version 1, ACK */
  p[k++] = o->code;
  p[k++] = (uint8_t)(r.mid >> 8);
  p[k++] = (uint8_t)r.mid;
  memcpy(p + k, r.token, r.tkl);
  k += r.tkl;
  memcpy(p + k, o->resp_prefix, o->resp_prefix_len);
  k += o->resp_prefix_len;
  uint8_t v[4];
  size_t vl = put_uint(v, (uint32_t)(num * 16 + 8 + szx)); /* more = 1 */
  k += put_opt_head(p + k, 8, OPT_BLOCK2 - o->resp_last, (uint32_t)vl);
  memcpy(p + k, v, vl);
  k += vl;
  vl = put_uint(v, (uint32_t)o->payload_len);
  k += put_opt_head(p + k, 8, OPT_SIZE2 - OPT_BLOCK2, (uint32_t)vl);
  memcpy(p + k, v, vl);
  k += vl;
  p[k++] = 0xff;
  memcpy(p + k, o->payload + offset, chunk);
  k += chunk;

  /* Commit: the request's record is now seen, the answer takes the next write sequence number. */
  replay_accept(o->state, seq);
  set_f64(o->state + 24, now);
  double wseq = get_f64(o->state);
  set_f64(o->state, wseq + 1);
  uint64_t ws = (uint64_t)wseq;
  uint8_t *h = s->out;
  size_t len = 8 + k + 8;
  h[0] = 23;
  h[1] = 0xfe;
  h[2] = 0xfd;
  h[3] = (uint8_t)(o->epoch >> 8);
  h[4] = (uint8_t)o->epoch;
  for (int i = 0; i < 6; i++) h[5 + i] = (uint8_t)(ws >> (40 - 8 * i));
  h[11] = (uint8_t)(len >> 8);
  h[12] = (uint8_t)len;
  memcpy(h + 13, h + 3, 8); /* explicit nonce = epoch ‖ sequence */
  memcpy(nonce, o->wr_salt, 4);
  memcpy(nonce + 4, h + 3, 8);
  memcpy(aad, h + 3, 8);
  aad[11] = (uint8_t)(k >> 8);
  aad[12] = (uint8_t)k;
  if (!ccm_seal(o->wr, o->wr_key, nonce, aad, p, (int)k, p + k)) {
    OPENSSL_cleanse(s->out, sizeof s->out);
    s->n.not_block--;
    return 1; /* committed but not sent: the peer retransmits and gets the same answer */
  }
  ssize_t w;
  do {
    w = sendto(s->fd, s->out, 13 + len, 0, (const struct sockaddr *)from, fromlen);
  } while (w < 0 && errno == EINTR);
  s->n.served++;
  s->n.not_block--;
  return 1;
}

/* ---- delivering datagrams to JS ------------------------------------------------------------------- */

static void addr_string(const struct sockaddr_storage *a, char *out, size_t room, uint32_t *port) {
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a;
    inet_ntop(AF_INET, &x->sin_addr, out, (socklen_t)room);
    *port = ntohs(x->sin_port);
  } else {
    const struct sockaddr_in6 *x = (const void *)a;
    inet_ntop(AF_INET6, &x->sin6_addr, out, (socklen_t)room);
    *port = ntohs(x->sin6_port);
    if (x->sin6_scope_id != 0) {
      /* a link-local peer: "%<interface index>", which parse_addr reads back */
      size_t l = strlen(out);
      snprintf(out + l, room - l, "%%%u", (unsigned)x->sin6_scope_id);
    }
  }
}

static void to_js(sock_t *s, const uint8_t *d, size_t n, const struct sockaddr_storage *from) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[3], cb, recv, result;
  void *copy;
  char host[INET6_ADDRSTRLEN];
  uint32_t port = 0;
  addr_string(from, host, sizeof host, &port);
  if (napi_create_buffer_copy(env, n, d, &copy, &argv[0]) == napi_ok && napi_create_string_latin1(env, host, NAPI_AUTO_LENGTH, &argv[1]) == napi_ok &&
      napi_create_uint32(env, port, &argv[2]) == napi_ok && napi_get_reference_value(env, s->cb_ref, &cb) == napi_ok && napi_get_global(env, &recv) == napi_ok) {
    s->n.passed++;
    napi_status st = napi_make_callback(env, s->actx, recv, cb, 3, argv, &result);
    if (st == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  sock_t *s = h->data;
  (void)events;
  if (status < 0 || s->closing) return;
  for (int round = 0; round < 8 && !s->closing; round++) {
    for (int i = 0; i < BATCH; i++) {
      s->msgs[i].msg_hdr.msg_name = &s->from[i];
      s->msgs[i].msg_hdr.msg_namelen = sizeof s->from[i];
      s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
      s->msgs[i].msg_hdr.msg_iovlen = 1;
      s->msgs[i].msg_hdr.msg_control = NULL;
      s->msgs[i].msg_hdr.msg_controllen = 0;
      s->msgs[i].msg_hdr.msg_flags = 0;
      s->msgs[i].msg_len = 0;
    }
    int got = recvmmsg(s->fd, s->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (got <= 0) return;
    for (int i = 0; i < got && !s->closing; i++) {
      if (s->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue; /* larger than any datagram we accept */
      const uint8_t *d = s->iov[i].iov_base;
      size_t n = s->msgs[i].msg_len;
      if (fast_path(s, d, n, &s->from[i], s->msgs[i].msg_hdr.msg_namelen)) continue;
      to_js(s, d, n, &s->from[i]);
    }
    if (got < BATCH) return;
  }
}

/* ---- N-API surface ------------------------------------------------------------------------------------ */

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "tips_dtls: " #call " failed");     \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static int parse_addr(napi_env env, napi_value host, napi_value portv, int family, struct sockaddr_storage *a, socklen_t *alen) {
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t l;
  uint32_t port, scope = 0;
  if (napi_get_value_string_latin1(env, host, buf, sizeof buf, &l) != napi_ok || l >= sizeof buf - 1) return 0;
  char *pct = strchr(buf, '%');
  if (pct) {
    *pct = 0;
    char *end;
    unsigned long v = strtoul(pct + 1, &end, 10);
    scope = (*end == 0 && pct[1] != 0) ? (uint32_t)v : if_nametoindex(pct + 1);
    if (scope == 0 || family != AF_INET6) return 0;
  }
  if (napi_get_value_uint32(env, portv, &port) != napi_ok || port > 65535) return 0;
  memset(a, 0, sizeof *a);
  if (family == AF_INET6) {
    struct sockaddr_in6 *x = (void *)a;
    x->sin6_family = AF_INET6;
    x->sin6_port = htons((uint16_t)port);
    x->sin6_scope_id = scope;
    if (inet_pton(AF_INET6, buf, &x->sin6_addr) != 1) {
      /* an IPv4 peer on a dual-stack socket: ::ffff:a.b.c.d */
      struct in_addr v4;
      if (inet_pton(AF_INET, buf, &v4) != 1) return 0;
      memset(&x->sin6_addr, 0, 16);
      x->sin6_addr.s6_addr[10] = 0xff;
      x->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&x->sin6_addr.s6_addr[12], &v4, 4);
    }
    *alen = sizeof *x;
  } else {
    struct sockaddr_in *x = (void *)a;
    x->sin_family = AF_INET;
    x->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, buf, &x->sin_addr) != 1) return 0;
    *alen = sizeof *x;
  }
  return 1;
}

static sock_t *sock_of(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) return NULL;
  sock_t *s = p;
  return s->closing ? NULL : s;
}

static void on_close(uv_handle_t *h) {
  sock_t *s = h->data;
  close(s->fd);
  for (int i = 0; i < s->max_slots; i++) {
    if (s->slots[i].rd) EVP_CIPHER_CTX_free(s->slots[i].rd);
    if (s->slots[i].wr) EVP_CIPHER_CTX_free(s->slots[i].wr);
  }
  OPENSSL_cleanse(s->slots, sizeof(slot_t) * (size_t)s->max_slots);
  free(s->slots);
  free(s->bufs);
  s->slots = NULL;
  s->bufs = NULL;
  s->max_slots = 0;
  s->poll_closed = 1;
  if (s->finalized) free(s);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  sock_t *s = data;
  (void)env;
  (void)hint;
  s->finalized = 1;
  if (s->poll_closed) free(s);
  /* A handle collected while still open (never closed by JS) keeps its socket for the process's life. */
}

/* open(host, port, ipv6, onMessage, maxOffloads, maxBytes) → handle */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "open(host, port, ipv6, onMessage, maxOffloads, maxBytes)");
    return NULL;
  }
  bool v6;
  uint32_t max_slots;
  double max_bytes;
  CHECK(napi_get_value_bool(env, argv[2], &v6));
  CHECK(napi_get_value_uint32(env, argv[4], &max_slots));
  CHECK(napi_get_value_double(env, argv[5], &max_bytes));
  if (max_slots < 1 || max_slots > 65536) max_slots = 256;
  struct sockaddr_storage a;
  socklen_t alen;
  int family = v6 ? AF_INET6 : AF_INET;
  if (!parse_addr(env, argv[0], argv[1], family, &a, &alen)) {
    napi_throw_error(env, "EINVAL", "tips_dtls: host must be an IP literal of the socket's family and port 0..65535");
    return NULL;
  }
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    napi_throw_error(env, "ESOCKET", strerror(errno));
    return NULL;
  }
  if (v6) {
    int off = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off); /* dual stack, as node:dgram */
  }
  if (bind(fd, (struct sockaddr *)&a, alen) != 0) {
    int e = errno;
    close(fd);
    napi_throw_error(env, e == EADDRINUSE ? "EADDRINUSE" : "EBIND", strerror(e));
    return NULL;
  }
  sock_t *s = calloc(1, sizeof *s);
  slot_t *slots = calloc(max_slots, sizeof(slot_t));
  uint8_t *bufs = malloc((size_t)BATCH * RECV_BYTES);
  if (!s || !slots || !bufs) {
    free(s);
    free(slots);
    free(bufs);
    close(fd);
    napi_throw_error(env, "ENOMEM", "tips_dtls: out of memory");
    return NULL;
  }
  s->env = env;
  s->fd = fd;
  s->family = family;
  s->slots = slots;
  s->max_slots = (int)max_slots;
  s->max_bytes = max_bytes > 0 ? (size_t)max_bytes : 0;
  s->bufs = bufs;
  for (int i = 0; i < BATCH; i++) {
    s->iov[i].iov_base = bufs + (size_t)i * RECV_BYTES;
    s->iov[i].iov_len = RECV_BYTES;
  }
  napi_value name;
  uv_loop_t *loop;
  if (napi_create_reference(env, argv[3], 1, &s->cb_ref) != napi_ok || napi_create_string_utf8(env, "TIPS_DTLS_SOCKET", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &s->actx) != napi_ok || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &s->poll, fd) != 0) {
    close(fd);
    free(slots);
    free(bufs);
    free(s);
    napi_throw_error(env, NULL, "tips_dtls: could not attach the socket to the event loop");
    return NULL;
  }
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  napi_value ext;
  CHECK(napi_create_external(env, s, on_finalize, NULL, &ext));
  return ext;
}

static napi_value js_address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, a, p;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = sock_of(env, argv[0]);
  if (!s) {
    napi_throw_error(env, "ECLOSED", "tips_dtls: socket closed");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t l = sizeof ss;
  getsockname(s->fd, (struct sockaddr *)&ss, &l);
  char host[INET6_ADDRSTRLEN];
  uint32_t port = 0;
  addr_string(&ss, host, sizeof host, &port);
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_create_string_latin1(env, host, NAPI_AUTO_LENGTH, &a));
  CHECK(napi_create_uint32(env, port, &p));
  CHECK(napi_set_element(env, out, 0, a));
  CHECK(napi_set_element(env, out, 1, p));
  return out;
}

/* send(handle, bytes, address, port) → errno (0 = sent) */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = sock_of(env, argv[0]);
  int err = 0;
  void *data;
  size_t len;
  struct sockaddr_storage a;
  socklen_t alen;
  if (!s) err = EBADF;
  else if (napi_get_typedarray_info(env, argv[1], NULL, &len, &data, NULL, NULL) != napi_ok) err = EINVAL;
  else if (!parse_addr(env, argv[2], argv[3], s->family, &a, &alen)) err = EINVAL;
  else {
    ssize_t w;
    do {
      w = sendto(s->fd, data, len, 0, (struct sockaddr *)&a, alen);
    } while (w < 0 && errno == EINTR);
    if (w < 0) err = errno;
  }
  CHECK(napi_create_int32(env, err, &out));
  return out;
}

static int bytes_arg(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  return napi_get_typedarray_info(env, v, NULL, len, (void **)data, NULL, NULL) == napi_ok;
}

/*
 * offload(handle, address, port, state, epoch, readKey, readSalt, writeKey, writeSalt,
 *         requestOptions, responsePrefix, responseLast, code, maxSzx, payload, deadlineMs) → bool
 */
static napi_value js_offload(napi_env env, napi_callback_info info) {
  size_t argc = 16;
  napi_value argv[16], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = argc == 16 ? sock_of(env, argv[0]) : NULL;
  bool ok = false;
  struct sockaddr_storage a;
  socklen_t alen;
  uint8_t *state, *rk, *rs, *wk, *ws, *ro, *rp, *pl;
  size_t state_len, rkl, rsl, wkl, wsl, rol, rpl, pll;
  uint32_t epoch, last, code, szx;
  double deadline;
  if (s && parse_addr(env, argv[1], argv[2], s->family, &a, &alen) && bytes_arg(env, argv[3], &state, &state_len) && state_len == SHARED_BYTES &&
      napi_get_value_uint32(env, argv[4], &epoch) == napi_ok && epoch >= 1 && epoch <= 0xffff && bytes_arg(env, argv[5], &rk, &rkl) && rkl == 16 &&
      bytes_arg(env, argv[6], &rs, &rsl) && rsl == 4 && bytes_arg(env, argv[7], &wk, &wkl) && wkl == 16 && bytes_arg(env, argv[8], &ws, &wsl) && wsl == 4 &&
      bytes_arg(env, argv[9], &ro, &rol) && rol <= MAX_OPTS && bytes_arg(env, argv[10], &rp, &rpl) && rpl <= MAX_OPTS &&
      napi_get_value_uint32(env, argv[11], &last) == napi_ok && last < OPT_BLOCK2 && napi_get_value_uint32(env, argv[12], &code) == napi_ok && code <= 255 &&
      napi_get_value_uint32(env, argv[13], &szx) == napi_ok && szx <= 6 && bytes_arg(env, argv[14], &pl, &pll) && pll > 0 && pll < 0xffffffffu &&
      napi_get_value_double(env, argv[15], &deadline) == napi_ok && !isnan(deadline)) {
    slot_t *o = find_slot(s, &a, alen);
    if (o) release_slot(s, o); /* one offload per peer: the newest replaces it */
    double now = mono_ms();
    deadline = now + (deadline - now_ms()); /* the wall-clock deadline JS gave, on the monotonic clock */
    if (!(deadline <= now + MAX_OFFLOAD_MS)) deadline = now + MAX_OFFLOAD_MS; /* never longer, whatever JS asks */
    for (int i = 0; i < s->max_slots; i++) {
      if (s->slots[i].used && !(now < s->slots[i].deadline)) {
        release_slot(s, &s->slots[i]);
        s->n.expired++;
      }
    }
    o = NULL;
    for (int i = 0; i < s->max_slots && !o; i++)
      if (!s->slots[i].used) o = &s->slots[i];
    size_t extra = payload_shared(s, NULL, pl) ? 0 : pll;
    if (!o || s->bytes_held + extra > s->max_bytes) {
      s->n.refused++;
    } else if (ccm_key(&o->rd, rk, 0) && ccm_key(&o->wr, wk, 1)) {
      memcpy(&o->addr, &a, sizeof a);
      o->addrlen = alen;
      o->epoch = (uint16_t)epoch;
      memcpy(o->rd_key, rk, 16);
      memcpy(o->wr_key, wk, 16);
      memcpy(o->rd_salt, rs, 4);
      memcpy(o->wr_salt, ws, 4);
      memcpy(o->req_opts, ro, rol);
      o->req_opts_len = rol;
      memcpy(o->resp_prefix, rp, rpl);
      o->resp_prefix_len = rpl;
      o->resp_last = last;
      o->code = (uint8_t)code;
      o->max_szx = (uint8_t)szx;
      o->deadline = deadline;
      if (napi_create_reference(env, argv[3], 1, &o->state_ref) == napi_ok && napi_create_reference(env, argv[14], 1, &o->payload_ref) == napi_ok) {
        o->state = state;
        o->payload = pl;
        o->payload_len = pll;
        o->used = 1;
        s->active++;
        s->bytes_held += extra;
        s->n.started++;
        ok = true;
      } else {
        if (o->state_ref) napi_delete_reference(env, o->state_ref);
        o->state_ref = NULL;
      }
    }
  }
  CHECK(napi_get_boolean(env, ok, &out));
  return out;
}

/* drop(handle, address, port) → bool: the peer's session closed, expired or is being replaced. */
static napi_value js_drop(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = argc == 3 ? sock_of(env, argv[0]) : NULL;
  struct sockaddr_storage a;
  socklen_t alen;
  bool dropped = false;
  if (s && s->active > 0 && parse_addr(env, argv[1], argv[2], s->family, &a, &alen)) {
    slot_t *o = find_slot(s, &a, alen);
    if (o) {
      release_slot(s, o);
      s->n.dropped++;
      dropped = true;
    }
  }
  CHECK(napi_get_boolean(env, dropped, &out));
  return out;
}

/* cancelAll(handle) → how many: a revocation signal; every next block goes through JS and re-checks. */
static napi_value js_cancel_all(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = sock_of(env, argv[0]);
  uint32_t k = 0;
  if (s) {
    for (int i = 0; i < s->max_slots; i++) {
      if (s->slots[i].used) {
        release_slot(s, &s->slots[i]);
        k++;
      }
    }
    s->n.cancelled += k;
  }
  CHECK(napi_create_uint32(env, k, &out));
  return out;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *p = NULL;
  CHECK(napi_get_value_external(env, argv[0], &p));
  sock_t *s = p;
  CHECK(napi_create_object(env, &out));
#define FIELD(name, val)                                 \
  CHECK(napi_create_double(env, (double)(val), &v));     \
  CHECK(napi_set_named_property(env, out, name, v));
  FIELD("blocksServed", s->n.served);
  FIELD("datagramsToJs", s->n.passed);
  FIELD("offloadsStarted", s->n.started);
  FIELD("offloadsCancelled", s->n.cancelled);
  FIELD("offloadsExpired", s->n.expired);
  FIELD("offloadsDropped", s->n.dropped);
  FIELD("offloadsRefused", s->n.refused);
  FIELD("offloadsActive", s->active);
  FIELD("offloadBytes", s->bytes_held);
  FIELD("passedNotRecord", s->n.not_record);
  FIELD("passedNotAuthentic", s->n.not_auth);
  FIELD("passedNotBlockGet", s->n.not_coap);
  FIELD("passedOtherOptions", s->n.not_options);
  FIELD("passedBlockOutOfRange", s->n.not_block);
#undef FIELD
  return out;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = sock_of(env, argv[0]);
  if (!s) return NULL;
  for (int i = 0; i < s->max_slots; i++) release_slot(s, &s->slots[i]);
  s->closing = 1;
  uv_poll_stop(&s->poll);
  napi_delete_reference(env, s->cb_ref);
  napi_async_destroy(env, s->actx);
  /* The external keeps pointing at s; sock_of refuses it (closing) until the memory goes in on_close. */
  uv_close((uv_handle_t *)&s->poll, on_close);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"address", NULL, js_address, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"offload", NULL, js_offload, NULL, NULL, NULL, napi_default, NULL},
      {"drop", NULL, js_drop, NULL, NULL, NULL, napi_default, NULL},
      {"cancelAll", NULL, js_cancel_all, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
