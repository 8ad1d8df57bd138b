// Issue 9 test 6: `npm run package:client` makes a Debian package that installs with dpkg into a
// clean root and whose units start. The root: an empty dpkg database, the host's /usr as the read-only
// lower layer of an overlay (so a shell, dpkg's helpers and systemd's unit library exist) and Debian
// 12's own Node 18 packages installed into it with dpkg — so `Depends: nodejs (>= 18)` is checked by
// dpkg for real. Everything runs in a private mount namespace (unshare -m); the host is untouched.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientTestMaster, startClientTestMaster } from './client-master.ts';
import { debianNode18 } from './client-node18.ts';
import { ROOT } from './helpers.ts';

let work: string;
let m: ClientTestMaster;
let deb: string;
let out = '';
let status = -1;

// One shell session in one mount namespace: build the root, install, start the units, purge.
const SCRIPT = String.raw`set -eu
W=$1; DEBS=$2; DEB=$3; ETC=$4
R=$W/root
mkdir -p $R/usr $R/etc $R/var/lib/dpkg/info $R/var/lib/dpkg/updates $R/tmp $R/proc $R/dev $R/run $R/var/log $W/upper $W/ovl
for d in bin lib lib64 sbin; do ln -s usr/$d $R/$d; done
touch $R/var/lib/dpkg/status $R/var/lib/dpkg/available
cp /etc/passwd /etc/group /etc/hosts /etc/nsswitch.conf $R/etc/
mount -t overlay overlay -o lowerdir=/usr,upperdir=$W/upper,workdir=$W/ovl $R/usr
mount --bind /dev $R/dev
mount -t proc proc $R/proc
in_root() { chroot $R /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
echo "== without nodejs"
if dpkg --root=$R -i $DEB; then echo "DEPENDS-NOT-CHECKED"; fi
dpkg --root=$R --purge tips-client >/dev/null 2>&1 || true
echo "== nodejs"
dpkg --root=$R --force-depends -i $DEBS/*.deb > $W/dpkg-node.log 2>&1 || { cat $W/dpkg-node.log; exit 1; }
echo "NODE $(in_root /usr/bin/node --version)"
echo "== tips-client"
dpkg --root=$R -i $DEB
echo "STATUS $(dpkg --root=$R -s tips-client | grep '^Status:')"
systemd-analyze verify --root=$R /lib/systemd/system/tips-client.service /lib/systemd/system/tips-client-enroll.service
echo "VERIFY-OK"
ls $R/etc/systemd/system/multi-user.target.wants/ | sed 's/^/WANTS /'
echo "STATEDIR $(stat -c %a $R/var/lib/tips-client)"
cp $ETC/* $R/etc/tips-client/
chmod 0600 $R/etc/tips-client/enrollment.json
echo "== enroll unit"
ENROLL=$(sed -n 's/^ExecStart=//p' $R/lib/systemd/system/tips-client-enroll.service)
in_root sh -c "$ENROLL"
echo "ENROLLED"
echo "KEYMODE $(stat -c %a $R/var/lib/tips-client/identity/current/key.pem)"
[ -e $R/etc/tips-client/enrollment.json ] && echo "SECRET-FILE-KEPT" || echo "SECRET-FILE-REMOVED"
echo "== agent unit"
RUN=$(sed -n 's/^ExecStart=//p' $R/lib/systemd/system/tips-client.service)
chroot $R /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c "exec $RUN" 2> $W/agent.log &
PID=$!
i=0; until grep -q '"event":"started"' $W/agent.log; do i=$((i+1)); [ $i -gt 400 ] && { cat $W/agent.log; exit 1; }; sleep 0.1; done
sleep 1
kill -0 $PID && echo "AGENT-RUNNING"
kill -TERM $PID; if wait $PID; then echo "AGENT-STOPPED-CLEANLY"; else echo "AGENT-EXIT $?"; kill -KILL $PID 2>/dev/null || true; fi
echo "== purge"
dpkg --root=$R --purge tips-client
[ -e $R/var/lib/tips-client ] && echo "STATE-KEPT" || echo "STATE-PURGED"
[ -e $R/usr/bin/tips-client ] && echo "BIN-KEPT" || echo "BIN-REMOVED"
`;

describe('T14 S14 issue 9 test 6: the Debian package installs into a clean root and its units start', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'tips-client-package-e2e-'));
    const built = spawnSync(process.execPath, [join(ROOT, 'scripts/package-client.mjs')], { encoding: 'utf8', timeout: 120_000 });
    if (built.status !== 0) throw new Error(`package:client: ${built.stderr}`);
    deb = built.stdout.trim();
    const node18 = debianNode18();
    if (!node18) throw new Error("Debian's nodejs 18 packages cannot be fetched (apt-get download): the package's dependency cannot be installed");
    m = await startClientTestMaster(work);
    const metal = await m.api<{ id: string }>('POST', '/api/v1/metals', { name: 'pi-deb', interfaces: [{ name: 'eth0', mac: '02:de:b0:00:00:01', type: 'ethernet', pxe: true }] });
    const secret = await m.api<{ id: string; secret: string }>('POST', '/api/v1/enrollment/secrets', { metal: metal.id });
    const etc = join(work, 'etc');
    mkdirSync(etc);
    copyFileSync(m.caFile, join(etc, 'ca.pem'));
    writeFileSync(
      join(etc, 'config.json'),
      JSON.stringify({
        masterUrl: m.httpsUrl,
        estUrl: `${m.httpsUrl}/.well-known/est`,
        caFile: '/etc/tips-client/ca.pem',
        tipsId: metal.id,
        metalId: metal.id,
        enrollmentFile: '/etc/tips-client/enrollment.json',
        stateDir: '/var/lib/tips-client',
        vendorId: null,
        classId: null,
      }),
    );
    writeFileSync(join(etc, 'enrollment.json'), JSON.stringify({ secretId: secret.id, secret: secret.secret }), { mode: 0o600 });
    writeFileSync(join(work, 'root.sh'), SCRIPT);
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', join(work, 'root.sh'), work, node18.debs, deb, etc], { encoding: 'utf8', timeout: 300_000 });
    out = `${r.stdout}\n${r.stderr}`;
    status = r.status ?? -1;
    if (process.env.TIPS_DEBUG_PACKAGE) console.log(out);
  }, 400_000);
  afterAll(async () => {
    await m?.master.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the package: Architecture all, Depends nodejs (>= 18), the bundle, the wrapper and both units', () => {
    const info = spawnSync('dpkg-deb', ['-f', deb, 'Package', 'Architecture', 'Depends'], { encoding: 'utf8' }).stdout;
    expect(info).toBe('Package: tips-client\nArchitecture: all\nDepends: nodejs (>= 18)\n');
    const files = spawnSync('dpkg-deb', ['-c', deb], { encoding: 'utf8' }).stdout;
    for (const f of ['./usr/lib/tips-client/tips-client.cjs', './usr/bin/tips-client', './lib/systemd/system/tips-client.service', './lib/systemd/system/tips-client-enroll.service']) expect(files).toContain(f);
    expect(files).not.toMatch(/\.node$/m);
  });

  it('dpkg refuses it without nodejs, installs it with Node 18, and systemd-analyze verifies both units', () => {
    expect(status, out).toBe(0);
    expect(out).toContain('dependency problems');
    expect(out).not.toContain('DEPENDS-NOT-CHECKED');
    expect(out).toMatch(/^NODE v18\./m);
    expect(out).toContain('STATUS Status: install ok installed');
    expect(out).toContain('VERIFY-OK');
    expect(out).toContain('WANTS tips-client-enroll.service');
    expect(out).toContain('WANTS tips-client.service');
    expect(out).toContain('STATEDIR 700');
  });

  it("the enroll unit's command enrolls against the real master; the agent unit's command starts and stops on SIGTERM", () => {
    expect(status, out).toBe(0);
    expect(out).toContain('ENROLLED');
    expect(out).toContain('KEYMODE 600');
    expect(out).toContain('SECRET-FILE-REMOVED');
    expect(out).toContain('AGENT-RUNNING');
    expect(out).toContain('AGENT-STOPPED-CLEANLY');
  });

  it('purge removes the program and the metal credentials', () => {
    expect(out).toContain('STATE-PURGED');
    expect(out).toContain('BIN-REMOVED');
    expect(readFileSync(deb).length).toBeGreaterThan(10_000);
  });
});
