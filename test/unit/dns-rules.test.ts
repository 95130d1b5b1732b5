// DNS capture rules (--capture-dns): their own chain, proxy uid/gid excluded, installed and
// removed with the rest; settings without DNS keep their rules and hash exactly as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigObject } from '../../src/config/load.js';
import { redirectSpec, specHash } from '../../src/steering/rules/redirect-spec.js';
import { iptablesChainRules, iptablesInstallScript, iptablesUninstallScript, iptablesDiff, parseNatSave } from '../../src/steering/rules/iptables.js';
import { nftTable } from '../../src/steering/rules/nftables.js';
import { evaluateOutbound } from '../../src/steering/rules/evaluate.js';

const withDns = parseConfigObject({ dns: { enabled: true }, transparent: { redirect: { proxyUid: 1337, proxyGid: 1338 } } });
const noDns = parseConfigObject({ transparent: { redirect: { proxyUid: 1337, proxyGid: 1338 } } });

test('capture-dns is refused unless dns is enabled on an IPv4 loopback address with a fixed port', () => {
  assert.throws(
    () => redirectSpec(noDns, { captureDns: true }),
    (e: Error & { code?: string }) => e.code === 'MESH_ERR_REDIRECT_INVALID' && /--capture-dns: DNS capture needs dns.enabled/.test(e.message),
  );
  const wide = parseConfigObject({ dns: { enabled: true, listen: '0.0.0.0:15053' }, transparent: { redirect: { proxyUid: 1, captureDns: true } } });
  assert.throws(() => redirectSpec(wide), /transparent.redirect.captureDns: dns.listen must be an IPv4 loopback address/);
  const v6 = parseConfigObject({ dns: { enabled: true, listen: '[::1]:15053' }, transparent: { redirect: { proxyUid: 1 } } });
  assert.throws(() => redirectSpec(v6, { captureDns: true }), /IPv4 loopback/);
  assert.equal(redirectSpec(withDns, { captureDns: true }).dns?.port, 15053);
  assert.equal(redirectSpec(withDns, {}).dns, undefined);
});

test('without DNS capture the rules and the settings hash are what they were', () => {
  const a = redirectSpec(noDns);
  const b = redirectSpec(withDns, { captureDns: false });
  assert.equal(specHash(a), specHash(b));
  assert.deepEqual(iptablesChainRules(a, 4), iptablesChainRules(b, 4));
  assert.ok(!iptablesChainRules(a, 4).some((r) => r.includes('DREAMMESH_DNS')));
  assert.ok(!nftTable(a).includes('dns'));
  assert.notEqual(specHash(redirectSpec(withDns, { captureDns: true })), specHash(a));
});

test('iptables: UDP 53 jumps from OUTPUT, TCP 53 first in DREAMMESH_OUTPUT, proxy uid/gid return, IPv4 only', () => {
  const s = redirectSpec(withDns, { captureDns: true });
  const r = iptablesChainRules(s, 4);
  assert.deepEqual(
    r.filter((x) => x.includes('DREAMMESH_DNS')),
    [
      '-A DREAMMESH_OUTPUT -p tcp -m tcp --dport 53 -j DREAMMESH_DNS',
      '-A DREAMMESH_DNS -m owner --uid-owner 1337 -j RETURN',
      '-A DREAMMESH_DNS -m owner --gid-owner 1338 -j RETURN',
      '-A DREAMMESH_DNS -p udp -j REDIRECT --to-ports 15053',
      '-A DREAMMESH_DNS -p tcp -j REDIRECT --to-ports 15053',
    ],
  );
  // Before `-o lo`: a resolver on an address of this host is still captured.
  const out = r.filter((x) => x.startsWith('-A DREAMMESH_OUTPUT'));
  assert.match(out[0]!, /--dport 53 -j DREAMMESH_DNS/);
  assert.ok(!iptablesChainRules(s, 6).some((x) => x.includes('DNS')));
  const script = iptablesInstallScript(s, 4, parseNatSave(''));
  assert.match(script, /^:DREAMMESH_DNS - \[0:0\]$/m);
  assert.match(script, /^-A OUTPUT -p udp -m udp --dport 53 -j DREAMMESH_DNS$/m);
  assert.ok(!iptablesInstallScript(s, 6, parseNatSave('')).includes('DNS'));
});

test('iptables: installed state with DNS matches; switching DNS off removes its chain and jump; uninstall removes everything', () => {
  const s = redirectSpec(withDns, { captureDns: true });
  const script = iptablesInstallScript(s, 4, parseNatSave(''));
  // What iptables-save would print after that script.
  const chains = script.split('\n').filter((l) => l.startsWith(':'));
  const rules = script.split('\n').filter((l) => l.startsWith('-A'));
  const save = ['*nat', ':OUTPUT ACCEPT [0:0]', ':PREROUTING ACCEPT [0:0]', ...chains, ...rules, 'COMMIT', ''].join('\n');
  const st = parseNatSave(save);
  assert.deepEqual(iptablesDiff(s, 4, st), []);
  const off = redirectSpec(withDns, { captureDns: false });
  assert.ok(iptablesDiff(off, 4, st).some((d) => /unexpected chain DREAMMESH_DNS/.test(d)));
  const again = iptablesInstallScript(off, 4, st);
  assert.match(again, /^-D OUTPUT -p udp -m udp --dport 53 -j DREAMMESH_DNS$/m);
  assert.match(again, /^-X DREAMMESH_DNS$/m);
  assert.ok(again.indexOf('-D OUTPUT -p udp') < again.indexOf('-X DREAMMESH_DNS'));
  const un = iptablesUninstallScript(st)!;
  assert.match(un, /^-D OUTPUT -p udp -m udp --dport 53 -j DREAMMESH_DNS$/m);
  assert.match(un, /^-X DREAMMESH_DNS$/m);
});

test('nftables: port 53 jumps to chain dns before anything returns; proxy uid/gid return from it', () => {
  const t = nftTable(redirectSpec(withDns, { captureDns: true }));
  const lines = t.split('\n').map((l) => l.trim());
  const out = lines.indexOf('chain output {');
  assert.equal(lines[out + 2], 'meta nfproto ipv4 udp dport 53 jump dns');
  assert.equal(lines[out + 3], 'meta nfproto ipv4 tcp dport 53 jump dns');
  const dns = lines.indexOf('chain dns {');
  assert.ok(dns > 0);
  assert.deepEqual(lines.slice(dns + 1, dns + 5), ['meta skuid 1337 return', 'meta skgid 1338 return', 'meta l4proto udp redirect to :15053', 'meta l4proto tcp redirect to :15053']);
});

test('explain evaluation: port 53 goes to the DNS listener before the loopback return, except for the proxy uid; off without captureDns', () => {
  const s = redirectSpec(withDns, { captureDns: true });
  const v = evaluateOutbound(s, '127.0.0.53', 53);
  assert.equal(v.captured && v.to, 15053);
  assert.equal(evaluateOutbound(s, '10.0.0.2', 53, { uid: 1337 }).captured, false);
  assert.equal(evaluateOutbound(redirectSpec(withDns), '127.0.0.53', 53).rule, 'loopback');
});

test('preflight (validate, run): DNS capture without dns.enabled or with a non-loopback dns.listen is refused; other doubts are warnings', async () => {
  const { preflight } = await import('../../src/config/preflight.js');
  const off = await preflight(parseConfigObject({ transparent: { redirect: { proxyUid: 1, captureDns: true } } }));
  assert.ok(off.problems.some((p) => /captureDns needs dns.enabled/.test(p.message)));
  const wide = await preflight(parseConfigObject({ dns: { enabled: true, listen: '0.0.0.0:15053', upstreams: ['10.0.0.2'] }, transparent: { redirect: { proxyUid: 1, captureDns: true } } }));
  assert.ok(wide.problems.some((p) => /dns.listen must be an IPv4 loopback address/.test(p.message)));
  assert.ok(wide.warnings.some((w) => /reachable from other hosts/.test(w)));
  const bad = await preflight(parseConfigObject({ dns: { enabled: true, cidr: '240.240.0.0/31', upstreams: ['resolver.example'] } }));
  assert.deepEqual(
    bad.problems.map((p) => p.code),
    ['MESH_ERR_CONFIG_INVALID', 'MESH_ERR_CONFIG_INVALID'],
  );
  const fine = await preflight(parseConfigObject({ dns: { enabled: true, upstreams: [] } }));
  assert.deepEqual(fine.problems, []);
  assert.ok(fine.warnings.some((w) => /no upstream resolvers/.test(w)));
  assert.ok(fine.warnings.some((w) => /without transparent.enabled/.test(w)));
});
