// Egress policy: allow-list syntax, matching, reasons, and load-time checks naming the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigObject } from '../../src/config/load.js';
import { decideEgress, parseAllowEntry } from '../../src/routing/egress.js';

const cfg = (allow: string[], policy = 'registry-only') => parseConfigObject({ egress: { policy, allow } });

test('allow-any allows everything and says why', () => {
  const d = decideEgress(cfg([], 'allow-any'), 'example.org', 443);
  assert.equal(d.allowed, true);
  assert.match(d.reason, /allow-any/);
});

test('registry-only with an empty list denies and says why', () => {
  const d = decideEgress(cfg([]), 'example.org', 443);
  assert.equal(d.allowed, false);
  assert.match(d.reason, /example\.org:443 is not a mesh service, matches no egress\.allow entry/);
});

test('exact hosts, any port or one port', () => {
  const c = cfg(['api.example.com', 'pay.example.com:443']);
  assert.equal(decideEgress(c, 'api.example.com', 8080).allowed, true);
  assert.equal(decideEgress(c, 'API.Example.com.', 80).allowed, true);
  assert.equal(decideEgress(c, 'pay.example.com', 443).allowed, true);
  const d = decideEgress(c, 'pay.example.com', 80);
  assert.equal(d.allowed, false);
  assert.match(d.reason, /matches egress\.allow\[1\] "pay\.example\.com:443" but port 80 is not allowed/);
  assert.equal(decideEgress(c, 'x.api.example.com', 80).allowed, false);
});

test('wildcard domains match subdomains, not the apex', () => {
  const c = cfg(['*.example.com:443']);
  const d = decideEgress(c, 'a.b.example.com', 443);
  assert.equal(d.allowed, true);
  assert.equal(d.rule, '*.example.com:443');
  assert.match(d.reason, /egress\.allow\[0\]/);
  assert.equal(decideEgress(c, 'example.com', 443).allowed, false);
  assert.equal(decideEgress(c, 'badexample.com', 443).allowed, false);
});

test('"*" with a port range allows any host on those ports', () => {
  const c = cfg(['*:8000-8999']);
  assert.equal(decideEgress(c, 'anything.test', 8000).allowed, true);
  assert.equal(decideEgress(c, '10.1.1.1', 8999).allowed, true);
  assert.equal(decideEgress(c, 'anything.test', 9000).allowed, false);
});

test('IPv4 and IPv6 addresses and CIDRs match address literals only', () => {
  const c = cfg(['10.0.0.0/8', '192.168.1.7:5432', '2001:db8::/32', '[fd00::/8]:443', '::1']);
  assert.equal(decideEgress(c, '10.200.3.4', 1).allowed, true);
  assert.equal(decideEgress(c, '11.0.0.1', 80).allowed, false);
  assert.equal(decideEgress(c, '192.168.1.7', 5432).allowed, true);
  assert.equal(decideEgress(c, '192.168.1.7', 5433).allowed, false);
  assert.equal(decideEgress(c, '2001:db8:1::5', 80).allowed, true);
  assert.equal(decideEgress(c, '[2001:DB8::5]', 80).allowed, true);
  assert.equal(decideEgress(c, 'fd12::1', 443).allowed, true);
  assert.equal(decideEgress(c, 'fd12::1', 80).allowed, false);
  assert.equal(decideEgress(c, '::1', 9).allowed, true);
  assert.equal(decideEgress(c, '2002::1', 80).allowed, false);
  // No DNS: a name is not matched by a CIDR.
  assert.equal(decideEgress(c, 'ten.example', 80).allowed, false);
});

test('bad allow-list entries are refused at load, naming the field', () => {
  const bad: [string, RegExp][] = [
    ['*.', /egress\.allow\.0: "\*\.": .*wildcard/],
    ['a*.example.com', /egress\.allow\.0: .*wildcard is only allowed/],
    ['10.0.0.0/33', /egress\.allow\.0: .*prefix length \/33/],
    ['300.1.1.1', /egress\.allow\.0: .*not a valid IPv4/],
    ['example.com:0', /egress\.allow\.0: .*not within 1-65535/],
    ['example.com:90-80', /egress\.allow\.0: .*not within/],
    ['example.com:http', /egress\.allow\.0: .*port must be N or N-M/],
    ['[::1:443', /egress\.allow\.0: .*unbalanced/],
    ['exa mple.com', /egress\.allow\.0: .*not a valid host/],
    ['zz::/8', /egress\.allow\.0: .*not an IP address/],
  ];
  for (const [entry, re] of bad) {
    assert.throws(
      () => cfg([entry]),
      (e: Error & { code?: string }) => e.code === 'MESH_ERR_CONFIG_INVALID' && re.test(e.message),
      entry,
    );
  }
  assert.throws(() => parseConfigObject({ egress: { allow: ['ok.example.com', 'bad host'] } }), /egress\.allow\.1:/);
});

test('bad bypass entries are refused at load, naming the field', () => {
  assert.doesNotThrow(() => parseConfigObject({ egress: { bypass: ['.example.com', '*.corp.test', '10.0.0.0/8', 'db.local:5432', '*', '::1'] } }));
  assert.throws(() => parseConfigObject({ egress: { bypass: ['a,b'] } }), /egress\.bypass\.0: .*one entry/);
  assert.throws(() => parseConfigObject({ egress: { bypass: ['x.test:1-5'] } }), /egress\.bypass\.0: .*one port/);
});

test('parseAllowEntry keeps the text and the port range', () => {
  const r = parseAllowEntry('[2001:db8::/32]:8000-8080');
  assert.ok(typeof r !== 'string');
  assert.equal(r.portMin, 8000);
  assert.equal(r.portMax, 8080);
});
