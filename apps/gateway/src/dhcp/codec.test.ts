import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeDhcp, type DhcpPacket, encodeDhcp } from './codec.ts';
import { BOOTREQUEST, DHCP_MESSAGE_TYPE, OPTION, OPTIONS_OFFSET } from './constants.ts';
import { DhcpError } from './errors.ts';

// A DHCPDISCOVER captured from busybox udhcpc 1.35.0 (`-x hostname:metal-1 -V PXEClient:Arch:00007:...`).
const UDHCPC_DISCOVER_HEX =
  '010106004e0a45160000000000000000000000000000000000000000020000aabb01' +
  '00'.repeat(202) +
  '638253633501013902024037070103060c0f1c2a0c076d6574616c2d313c20505845436c69656e743a417263683a30303030373a554e44493a3030333031363d0701020000aabb01ff';

const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof DhcpError) return e.code;
    throw e;
  }
  return 'no error';
}

describe('T5 DHCP codec decodes a real client message (RFC 2131/2132)', () => {
  it('decodes the udhcpc DISCOVER field by field', () => {
    const bytes = hex(UDHCPC_DISCOVER_HEX);
    expect(bytes.length).toBe(309);
    const p = decodeDhcp(bytes);
    expect(p.op).toBe(BOOTREQUEST);
    expect(p.xid).toBe(0x4e0a4516);
    expect(Buffer.from(p.chaddr).toString('hex')).toBe('020000aabb01');
    expect(p.ciaddr).toBe('0.0.0.0');
    expect(p.options.messageType).toBe(DHCP_MESSAGE_TYPE.DHCPDISCOVER);
    expect(p.options.maxMessageSize).toBe(576);
    expect(p.options.parameterRequestList).toEqual([1, 3, 6, 12, 15, 28, 42]);
    expect(p.options.hostName).toBe('metal-1');
    expect(p.options.vendorClass).toBe('PXEClient:Arch:00007:UNDI:003016');
    expect(Buffer.from(p.options.clientIdentifier!).toString('hex')).toBe('01020000aabb01');
    expect(p.options.other).toEqual([]);
  });

  it('round-trips the decoded message through the encoder', () => {
    const p = decodeDhcp(hex(UDHCPC_DISCOVER_HEX));
    expect(decodeDhcp(encodeDhcp(p))).toEqual(p);
  });

  it('concatenates a split long option (RFC 3396) and splits it again on encode', () => {
    const p = decodeDhcp(hex(UDHCPC_DISCOVER_HEX));
    const long: DhcpPacket = { ...p, options: { ...p.options, bootfileName: 'x'.repeat(400) } };
    const bytes = encodeDhcp(long);
    expect(decodeDhcp(bytes).options.bootfileName).toBe('x'.repeat(400));
  });
});

describe('T5 DHCP codec is strict: malformed input is a DhcpError with a stable code', () => {
  const good = hex(UDHCPC_DISCOVER_HEX);
  const set = (b: Uint8Array, i: number, v: number) => {
    b[i] = v;
    return b;
  };
  const mutate = (f: (b: Uint8Array) => Uint8Array | undefined) => {
    const b = good.slice();
    return f(b) ?? b;
  };
  it.each<[string, Uint8Array, string]>([
    ['too short', good.subarray(0, 200), 'too_short'],
    ['too long', new Uint8Array(2000), 'too_long'],
    ['bad op', mutate((b) => set(b, 0, 3)), 'bad_field'],
    ['token ring', mutate((b) => set(b, 1, 6)), 'unsupported_hardware'],
    ['no cookie', mutate((b) => set(b, 236, 0)), 'bad_magic_cookie'],
    ['no END', good.subarray(0, good.length - 1), 'missing_end'],
    ['garbage after END', Uint8Array.from([...good, 7]), 'trailing_bytes'],
    ['option runs past the end', mutate((b) => b.subarray(0, OPTIONS_OFFSET + 8)), 'truncated_option'],
    ['message type 9', mutate((b) => set(b, OPTIONS_OFFSET + 2, 9)), 'bad_option_value'],
    ['max size below 576', mutate((b) => set(b, OPTIONS_OFFSET + 5, 1)), 'bad_option_value'],
    ['chaddr junk beyond hlen', mutate((b) => set(b, 40, 1)), 'bad_field'],
  ])('%s → %s', (_n, bytes, code) => {
    expect(codeOf(() => decodeDhcp(bytes))).toBe(code);
  });

  it('rejects option overload (52) and a missing message type', () => {
    const base = Array.from(good.subarray(0, OPTIONS_OFFSET));
    expect(codeOf(() => decodeDhcp(Uint8Array.from([...base, 53, 1, 1, 52, 1, 3, 255])))).toBe('option_overload_unsupported');
    expect(codeOf(() => decodeDhcp(Uint8Array.from([...base, 12, 1, 65, 255])))).toBe('missing_message_type');
  });

  it('checks option lengths (server id must be 4 bytes, arch list even, machine id 17 bytes type 0)', () => {
    const base = Array.from(good.subarray(0, OPTIONS_OFFSET));
    const withOpt = (...o: number[]) => Uint8Array.from([...base, 53, 1, 1, ...o, 255]);
    expect(codeOf(() => decodeDhcp(withOpt(OPTION.SERVER_IDENTIFIER, 3, 1, 2, 3)))).toBe('bad_option_length');
    expect(codeOf(() => decodeDhcp(withOpt(OPTION.CLIENT_SYSTEM_ARCHITECTURE, 3, 0, 7, 0)))).toBe('bad_option_length');
    expect(codeOf(() => decodeDhcp(withOpt(OPTION.CLIENT_MACHINE_IDENTIFIER, 17, 1, ...new Array(16).fill(0))))).toBe(
      'bad_option_value',
    );
    const ok = decodeDhcp(withOpt(OPTION.CLIENT_SYSTEM_ARCHITECTURE, 4, 0, 7, 0, 9));
    expect(ok.options.clientArchitectures).toEqual([7, 9]);
  });
});

describe('T5 DHCP decoder fuzzing: never throws anything but DhcpError; valid packets round-trip', () => {
  const seed = hex(UDHCPC_DISCOVER_HEX);

  it('survives thousands of mutated real packets', () => {
    const mutation = fc.array(fc.tuple(fc.nat(seed.length + 20), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(mutation, fc.nat(seed.length + 20), (edits, cut) => {
        const b = new Uint8Array(Math.max(seed.length, ...edits.map(([i]) => i + 1)));
        b.set(seed);
        for (const [i, v] of edits) b[i] = v;
        const bytes = b.subarray(0, Math.max(cut, 1));
        try {
          const p = decodeDhcp(bytes);
          // Anything the decoder accepts must re-encode to something that decodes to the same thing.
          expect(decodeDhcp(encodeDhcp(p))).toEqual(p);
        } catch (e) {
          if (!(e instanceof DhcpError)) throw e;
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('survives random byte strings with a valid header prefix', () => {
    const prefix = seed.subarray(0, OPTIONS_OFFSET);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (tail) => {
        const bytes = new Uint8Array(prefix.length + tail.length);
        bytes.set(prefix);
        bytes.set(tail, prefix.length);
        try {
          const p = decodeDhcp(bytes);
          expect(decodeDhcp(encodeDhcp(p))).toEqual(p);
        } catch (e) {
          if (!(e instanceof DhcpError)) throw e;
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('round-trips generated valid packets', () => {
    const ip = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((a) => a.join('.'));
    const text = fc.string({ minLength: 1, maxLength: 300, unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)) });
    const packet = fc.record({
      xid: fc.nat(0xffffffff),
      secs: fc.nat(0xffff),
      flags: fc.constantFrom(0, 0x8000),
      ciaddr: ip,
      mac: fc.uint8Array({ minLength: 6, maxLength: 6 }),
      type: fc.constantFrom(...Object.values(DHCP_MESSAGE_TYPE)),
      hostName: fc.option(text, { nil: undefined }),
      requestedIp: fc.option(ip, { nil: undefined }),
      routers: fc.option(fc.array(ip, { minLength: 1, maxLength: 5 }), { nil: undefined }),
      archs: fc.option(fc.array(fc.nat(0xffff), { minLength: 1, maxLength: 4 }), { nil: undefined }),
      other: fc.array(fc.record({ code: fc.integer({ min: 224, max: 254 }), data: fc.uint8Array({ minLength: 1, maxLength: 40 }) }), {
        maxLength: 3,
      }),
    });
    fc.assert(
      fc.property(packet, (g) => {
        const uniqueOther = g.other.filter((o, i) => g.other.findIndex((x) => x.code === o.code) === i);
        const p: DhcpPacket = {
          op: BOOTREQUEST,
          htype: 1,
          hlen: 6,
          hops: 0,
          xid: g.xid,
          secs: g.secs,
          flags: g.flags,
          ciaddr: g.ciaddr,
          yiaddr: '0.0.0.0',
          siaddr: '0.0.0.0',
          giaddr: '0.0.0.0',
          chaddr: g.mac,
          sname: '',
          file: '',
          options: { messageType: g.type, other: uniqueOther },
        };
        if (g.hostName !== undefined) p.options.hostName = g.hostName;
        if (g.requestedIp !== undefined) p.options.requestedIp = g.requestedIp;
        if (g.routers !== undefined) p.options.routers = g.routers;
        if (g.archs !== undefined) p.options.clientArchitectures = g.archs;
        expect(decodeDhcp(encodeDhcp(p))).toEqual(p);
      }),
      { numRuns: 2000 },
    );
  });
});
