import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parseConfigObject } from '../../src/config/load.js';
import { redirectSpec, parseCidr, cidrContains, specHash } from '../../src/steering/rules/redirect-spec.js';
import { iptablesChainRules, iptablesInstallScript, iptablesUninstallScript, iptablesDiff, parseNatSave, iptablesMangleRules, iptablesInstalledTproxy } from '../../src/steering/rules/iptables.js';
import { nftTable, nftInstallScript, nftUninstallScript, nftInstalledHash } from '../../src/steering/rules/nftables.js';
import { which } from '../../src/steering/rules/backend.js';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
// An app, so that there is an inbound listener (0.0.0.0:15006) for inbound capture to go to.
const base = parseConfigObject({ app: '127.0.0.1:8080', transparent: { redirect: { proxyUid: 1337 } } });

test('CIDRs: canonical form, host bits masked, bad input named', () => {
  assert.equal(parseCidr('10.1.2.3/8', 'f').text, '10.0.0.0/8');
  assert.equal(parseCidr('192.0.2.7', 'f').text, '192.0.2.7/32');
  assert.equal(parseCidr('fd00::/8', 'f').text, 'fd00::/8');
  assert.throws(() => parseCidr('10.0.0.0/33', '--x'), /--x: "10.0.0.0\/33" has an invalid prefix length/);
  assert.throws(() => parseCidr('300.1.1.1', '--x'), /not an IP address/);
  assert.throws(() => parseCidr('example.com', '--x'), /MESH_ERR|not an IP/);
  assert.ok(cidrContains(parseCidr('10.0.0.0/8', 'f'), '10.200.3.4'));
  assert.ok(!cidrContains(parseCidr('10.0.0.0/8', 'f'), '11.0.0.1'));
  assert.ok(cidrContains(parseCidr('fd00::/8', 'f'), 'fd12::1'));
  assert.ok(!cidrContains(parseCidr('fd00::/8', 'f'), '10.0.0.1'));
});

test('spec from config with flags on top; ports default to the listeners', () => {
  const s = redirectSpec(base, { excludeOutboundPorts: '5432, 22,22', includeInboundPorts: '*' });
  assert.equal(s.outboundPort, 15001);
  assert.equal(s.inboundPort, 15006);
  assert.deepEqual(s.excludeOutboundPorts, [22, 5432]);
  assert.equal(s.includeInboundPorts, '*');
  assert.equal(s.includeOutboundCidrs, '*');
  assert.equal(redirectSpec(base, { includeOutboundCidrs: '' }).includeOutboundCidrs.length, 0);
});

test('spec validation: every bad value is a MESH_ERR_REDIRECT_INVALID naming the flag', () => {
  const bad: [Record<string, string | boolean>, RegExp][] = [
    [{ proxyUid: '-1' }, /--proxy-uid/],
    [{ outboundPort: '65536' }, /--outbound-port/],
    [{ excludeOutboundPorts: '22,x' }, /--exclude-outbound-ports: "x"/],
    [{ includeOutboundCidrs: '*,10.0.0.0/8' }, /only allowed alone/],
    [{ excludeOutboundCidrs: 'fd00::/8' }, /IPv6 CIDR fd00::\/8 given but IPv6 capture is off/],
    [{ backend: 'pf' }, /--backend/],
  ];
  for (const [flags, re] of bad) {
    assert.throws(
      () => redirectSpec(base, flags),
      (e: Error & { code?: string }) => e.code === 'MESH_ERR_REDIRECT_INVALID' && re.test(e.message),
      JSON.stringify(flags),
    );
  }
  assert.throws(() => redirectSpec(parseConfigObject({})), /required, otherwise its own upstream connections would be captured/);
});

test('iptables rules: proxy uid and loopback first, exclusions before the redirect, inbound ports', () => {
  const s = redirectSpec(base, { excludeOutboundCidrs: '10.0.0.0/8', excludeOutboundPorts: '5432', includeInboundPorts: '8080', excludeInboundPorts: '22' });
  const r = iptablesChainRules(s, 4);
  const out = r.filter((l) => l.startsWith('-A DREAMMESH_OUTPUT'));
  assert.deepEqual(out, [
    '-A DREAMMESH_OUTPUT -m owner --uid-owner 1337 -j RETURN',
    `-A DREAMMESH_OUTPUT -o lo -m comment --comment "dreammesh:${specHash(s)}" -j RETURN`,
    '-A DREAMMESH_OUTPUT -d 127.0.0.0/8 -j RETURN',
    '-A DREAMMESH_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN',
    '-A DREAMMESH_OUTPUT -d 10.0.0.0/8 -j RETURN',
    '-A DREAMMESH_OUTPUT -j DREAMMESH_REDIRECT',
  ]);
  assert.ok(r.includes('-A DREAMMESH_REDIRECT -p tcp -j REDIRECT --to-ports 15001'));
  assert.ok(r.includes('-A DREAMMESH_INBOUND -p tcp -m tcp --dport 22 -j RETURN'));
  assert.ok(r.includes('-A DREAMMESH_INBOUND -p tcp -m tcp --dport 8080 -j DREAMMESH_IN_REDIRECT'));
  const v6 = iptablesChainRules(redirectSpec(base, { ipv6: true, excludeOutboundCidrs: '10.0.0.0/8,fd00::/8' }), 6);
  assert.ok(v6.includes('-A DREAMMESH_OUTPUT -d ::1/128 -j RETURN'));
  assert.ok(v6.includes('-A DREAMMESH_OUTPUT -d fd00::/8 -j RETURN'));
  assert.ok(!v6.some((l) => l.includes('10.0.0.0/8')));
});

test('iptables install script: idempotent against what is installed, repairs a missing jump, leaves others alone', () => {
  const s = redirectSpec(base);
  const fresh = iptablesInstallScript(s, 4, parseNatSave(''));
  assert.match(fresh, /^\*nat\n:DREAMMESH_OUTPUT - \[0:0\]/);
  assert.match(fresh, /-A OUTPUT -p tcp -j DREAMMESH_OUTPUT\n-A PREROUTING -p tcp -j DREAMMESH_INBOUND\nCOMMIT\n$/);
  // Simulate the save output after that install plus a foreign rule.
  const installed = [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':DREAMMESH_OUTPUT - [0:0]',
    ':DREAMMESH_REDIRECT - [0:0]',
    ':DREAMMESH_INBOUND - [0:0]',
    ':DREAMMESH_IN_REDIRECT - [0:0]',
    '-A PREROUTING -p tcp -j DREAMMESH_INBOUND',
    '-A OUTPUT -d 192.0.2.1/32 -j RETURN',
    '-A OUTPUT -p tcp -j DREAMMESH_OUTPUT',
    ...iptablesChainRules(s, 4),
    'COMMIT',
  ].join('\n');
  const st = parseNatSave(installed);
  assert.deepEqual(iptablesDiff(s, 4, st), []);
  const again = iptablesInstallScript(s, 4, st);
  assert.doesNotMatch(again, /^-[AD] (OUTPUT|PREROUTING)/m, 'correct jumps stay where they are');
  const noJump = parseNatSave(installed.replace('-A OUTPUT -p tcp -j DREAMMESH_OUTPUT\n', ''));
  assert.deepEqual(iptablesDiff(s, 4, noJump), ['missing jump: -A OUTPUT -p tcp -j DREAMMESH_OUTPUT']);
  assert.match(iptablesInstallScript(s, 4, noJump), /^-A OUTPUT -p tcp -j DREAMMESH_OUTPUT$/m);
  const dup = parseNatSave(installed.replace('-A OUTPUT -p tcp -j DREAMMESH_OUTPUT', '-A OUTPUT -p tcp -j DREAMMESH_OUTPUT\n-A OUTPUT -p tcp -j DREAMMESH_OUTPUT'));
  assert.match(iptablesInstallScript(s, 4, dup), /^-D OUTPUT -p tcp -j DREAMMESH_OUTPUT$/m);
  const un = iptablesUninstallScript(st)!;
  assert.match(un, /-D PREROUTING -p tcp -j DREAMMESH_INBOUND\n-D OUTPUT -p tcp -j DREAMMESH_OUTPUT/);
  assert.match(un, /-X DREAMMESH_REDIRECT/);
  assert.doesNotMatch(un, /192\.0\.2\.1/);
  assert.equal(iptablesUninstallScript(parseNatSave('*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j RETURN\nCOMMIT\n')), null);
});

test('iptables-nft: base chains and table our install creates are marked for uninstall', () => {
  const s = redirectSpec(base);
  const sc = iptablesInstallScript(s, 4, parseNatSave(''), { markCreated: { table: true, baseChains: ['OUTPUT'] } });
  assert.match(sc, /^:DREAMMESH_MADE_PREROUTING - \[0:0\]$/m);
  assert.doesNotMatch(sc, /DREAMMESH_MADE_OUTPUT|DREAMMESH_MADE_TABLE/);
});

test('nftables: one inet table, same decisions, install and uninstall are single idempotent transactions', () => {
  const s = redirectSpec(base, { excludeOutboundCidrs: '10.0.0.0/8,192.168.0.0/16', excludeOutboundPorts: '22,5432', includeInboundPorts: '8080' });
  const t = nftTable(s);
  assert.match(t, /type nat hook output priority -100; policy accept;\n\t\tmeta l4proto != tcp return\n\t\tmeta nfproto ipv6 return\n\t\tmeta skuid 1337 return\n\t\toifname "lo" return comment "dreammesh:[0-9a-f]{12}"/);
  assert.match(t, /tcp dport \{ 22, 5432 \} return/);
  assert.match(t, /ip daddr \{ 10\.0\.0\.0\/8, 192\.168\.0\.0\/16 \} return/);
  assert.match(t, /\tmeta l4proto tcp redirect to :15001\n/);
  assert.match(t, /tcp dport 8080 redirect to :15006/);
  assert.ok(nftInstallScript(s).startsWith('table inet dreammesh\ndelete table inet dreammesh\ntable inet dreammesh {'));
  assert.equal(nftUninstallScript(), 'table inet dreammesh\ndelete table inet dreammesh\n');
  assert.equal(nftInstalledHash(t), specHash(s));
  const v6 = nftTable(redirectSpec(base, { ipv6: true, includeOutboundCidrs: '10.0.0.0/8,fd00::/8' }));
  assert.doesNotMatch(v6, /nfproto ipv6 return/);
  assert.match(v6, /ip6 daddr fd00::\/8 meta l4proto tcp redirect to :15001/);
});

test('dreammesh redirect: flag errors exit 2 before anything runs; --dry-run prints the exact rules', async () => {
  const fail = async (args: string[]): Promise<{ code: number; stderr: string }> =>
    run(process.execPath, [bin, 'redirect', ...args]).then(
      () => assert.fail(`expected failure: ${args.join(' ')}`),
      (e: { code: number; stderr: string }) => e,
    );
  let e = await fail(['install', '--proxy-uid', '0', '--exclude-outbound-cidrs', '10.0.0.0/40']);
  assert.equal(e.code, 2);
  assert.match(e.stderr, /MESH_ERR_REDIRECT_INVALID: --exclude-outbound-cidrs/);
  e = await fail(['install', '--proxy-uid', '0', '--frobnicate']);
  assert.equal(e.code, 2);
  e = await fail(['nothing']);
  assert.equal(e.code, 2);
  e = await fail(['install']);
  assert.match(e.stderr, /--proxy-uid/);
  if (which('nft') !== null) {
    const { stdout } = await run(process.execPath, [bin, 'redirect', 'install', '--dry-run', '--backend', 'nftables', '--proxy-uid', '7', '--exclude-outbound-ports', '22']);
    assert.match(stdout, /^# nft -f - <<EOF\ntable inet dreammesh\ndelete table inet dreammesh\n/m);
    assert.match(stdout, /meta skuid 7 return/);
  }
});

test('inbound capture needs an inbound listener: without an app it is refused, outbound capture alone is fine', () => {
  const noApp = parseConfigObject({ transparent: { redirect: { proxyUid: 1337 } } });
  assert.throws(() => redirectSpec(noApp, { includeInboundPorts: '8080' }), /--inbound-port: required to capture inbound traffic/);
  assert.equal(redirectSpec(noApp).includeOutboundCidrs, '*');
  assert.equal(redirectSpec(noApp, { includeInboundPorts: '8080', inboundPort: '15006' }).inboundPort, 15006);
});

test('proxyMark and inboundMode tproxy: parsed, in every generator; without them the settings hash is unchanged', () => {
  // The hash an install made before these options existed still matches.
  assert.equal(specHash(redirectSpec(base)), '6e89ab4372d5');
  const m = redirectSpec(parseConfigObject({ transparent: { redirect: { proxyMark: 0x539 } } }));
  assert.equal(m.proxyUid, undefined, 'a mark alone is enough self-exclusion');
  assert.equal(m.proxyMark, 0x539);
  assert.ok(iptablesChainRules(m, 4).includes('-A DREAMMESH_OUTPUT -m mark --mark 0x539 -j RETURN'));
  assert.match(nftTable(m), /meta mark 0x00000539 return/);
  assert.equal(redirectSpec(base, { proxyMark: '0x10' }).proxyMark, 16);
  assert.equal(redirectSpec(base, { proxyMark: '1337' }).proxyMark, 1337);
  for (const bad of ['0', '-1', '0x100000000', '4294967296', 'mark', '0x']) assert.throws(() => redirectSpec(base, { proxyMark: bad }), /MESH_ERR_REDIRECT_INVALID|--proxy-mark/);
  const t = redirectSpec(base, { inboundMode: 'tproxy', includeInboundPorts: '8080' });
  assert.deepEqual(t.tproxy, { mark: 0x4d4d, table: 15006 });
  const nft = nftTable(t);
  assert.match(nft, /chain divert \{\n\t\ttype filter hook prerouting priority mangle;/);
  assert.match(nft, /iifname "lo" return/);
  assert.match(nft, /tcp dport 8080 tproxy to :15006 meta mark set 0x00004d4d accept/);
  assert.doesNotMatch(nft, /redirect to :15006/, 'no NAT for inbound in tproxy mode');
  assert.throws(() => redirectSpec(base, { inboundMode: 'divert' }), /--inbound-mode: "divert" is not one of redirect, tproxy/);
  assert.throws(() => redirectSpec(parseConfigObject({ transparent: { redirect: { proxyMark: 0x4d4d, inboundMode: 'tproxy' } } })), /tproxyMark: must differ from proxyMark/);
});

test('iptables inboundMode tproxy: mangle divert and reply chains, no inbound NAT, idempotent, uninstall finds mark and table', () => {
  const t = redirectSpec(base, { inboundMode: 'tproxy', includeInboundPorts: '8080,9090', excludeInboundPorts: '22', ipv6: true });
  // The nat table keeps its chains but redirects nothing inbound.
  assert.ok(!iptablesChainRules(t, 4).some((r) => /^-A DREAMMESH_INBOUND .*-j DREAMMESH_IN_REDIRECT$/.test(r)), 'no jump to the inbound REDIRECT');
  assert.ok(iptablesChainRules(t, 4).includes('-A DREAMMESH_INBOUND -p tcp -m tcp --dport 22 -j RETURN'));
  assert.deepEqual(iptablesMangleRules(t, 4), [
    '-A DREAMMESH_DIVERT -i lo -j RETURN',
    '-A DREAMMESH_DIVERT -p tcp -m tcp --dport 22 -j RETURN',
    '-A DREAMMESH_DIVERT -p tcp -m socket --transparent -m comment --comment "dreammesh-tproxy:19789:15006" -j DREAMMESH_DIVERT_MARK',
    '-A DREAMMESH_DIVERT -p tcp -m tcp --dport 8080 -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x4d4d/0xffffffff',
    '-A DREAMMESH_DIVERT -p tcp -m tcp --dport 9090 -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x4d4d/0xffffffff',
    '-A DREAMMESH_DIVERT_MARK -j MARK --set-xmark 0x4d4d/0xffffffff',
    '-A DREAMMESH_DIVERT_MARK -j ACCEPT',
    '-A DREAMMESH_REPLY -m mark --mark 0x4d4d -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff',
    '-A DREAMMESH_REPLY -m connmark --mark 0x4d4d -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff',
  ]);
  assert.match(iptablesMangleRules(t, 6).join('\n'), /--on-ip :: --tproxy-mark 0x4d4d\/0xffffffff/);
  const all = redirectSpec(base, { inboundMode: 'tproxy', includeInboundPorts: '*' });
  assert.ok(iptablesMangleRules(all, 4).includes('-A DREAMMESH_DIVERT -p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x4d4d/0xffffffff'));
  assert.deepEqual(iptablesMangleRules(redirectSpec(base, { includeInboundPorts: '8080' }), 4), [], 'redirect mode: nothing in mangle');

  const fresh = iptablesInstallScript(t, 4, parseNatSave(''), {}, 'mangle');
  assert.match(fresh, /^\*mangle\n:DREAMMESH_DIVERT - \[0:0\]\n:DREAMMESH_DIVERT_MARK - \[0:0\]\n:DREAMMESH_REPLY - \[0:0\]\n/);
  assert.match(fresh, /-A PREROUTING -p tcp -j DREAMMESH_DIVERT\n-A OUTPUT -p tcp -j DREAMMESH_REPLY\nCOMMIT\n$/);
  const saved = [
    '*nat',
    ':OUTPUT ACCEPT [0:0]',
    'COMMIT',
    '*mangle',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':DREAMMESH_DIVERT - [0:0]',
    ':DREAMMESH_DIVERT_MARK - [0:0]',
    ':DREAMMESH_REPLY - [0:0]',
    '-A PREROUTING -p tcp -j DREAMMESH_DIVERT',
    '-A OUTPUT -p tcp -j DREAMMESH_REPLY',
    ...iptablesMangleRules(t, 4),
    'COMMIT',
    '',
  ].join('\n');
  const mangle = parseNatSave(saved, 'mangle');
  assert.deepEqual(parseNatSave(saved).chains, [], 'the nat section is read apart');
  assert.deepEqual(iptablesDiff(t, 4, mangle, 'mangle'), []);
  assert.doesNotMatch(iptablesInstallScript(t, 4, mangle, {}, 'mangle'), /^-[AD] (OUTPUT|PREROUTING)/m, 'jumps that are right stay');
  assert.deepEqual(iptablesDiff(redirectSpec(base, { inboundMode: 'tproxy', includeInboundPorts: '8080' }), 4, mangle, 'mangle'), [
    'unexpected rule: -A DREAMMESH_DIVERT -p tcp -m tcp --dport 22 -j RETURN',
    'unexpected rule: -A DREAMMESH_DIVERT -p tcp -m tcp --dport 9090 -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x4d4d/0xffffffff',
  ]);
  assert.deepEqual(iptablesInstalledTproxy(mangle), { mark: 0x4d4d, table: 15006 });
  assert.equal(iptablesInstalledTproxy(parseNatSave('', 'mangle')), null);
  const un = iptablesUninstallScript(mangle, 'mangle')!;
  assert.match(un, /^\*mangle\n-D PREROUTING -p tcp -j DREAMMESH_DIVERT\n-D OUTPUT -p tcp -j DREAMMESH_REPLY\n/);
  assert.match(un, /-X DREAMMESH_DIVERT_MARK\n/);
  const marked = iptablesInstallScript(t, 4, parseNatSave(''), { markCreated: { table: false, baseChains: [] } }, 'mangle');
  assert.match(marked, /^:DREAMMESH_MADE_OUTPUT - \[0:0\]\n:DREAMMESH_MADE_PREROUTING - \[0:0\]\n:DREAMMESH_MADE_TABLE - \[0:0\]$/m);
  // Turning tproxy on changes the stamp; the settings of installs without it hash as before.
  assert.notEqual(specHash(t), specHash(redirectSpec(base, { includeInboundPorts: '8080,9090', excludeInboundPorts: '22', ipv6: true })));
});
