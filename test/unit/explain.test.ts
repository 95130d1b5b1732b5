import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigObject } from '../../src/config/load.js';
import { redirectSpec } from '../../src/steering/rules/redirect-spec.js';
import { evaluateOutbound } from '../../src/steering/rules/evaluate.js';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('capture evaluation follows the rule order: proxy uid, loopback, ports, CIDRs, includes', () => {
  const cfg = parseConfigObject({ transparent: { redirect: { proxyUid: 1337, excludeOutboundCidrs: ['10.9.0.0/16'], excludeOutboundPorts: [22], includeOutboundCidrs: ['10.0.0.0/8'] } } });
  const s = redirectSpec(cfg);
  assert.equal(evaluateOutbound(s, '10.1.2.3', 80, { uid: 1337 }).rule, 'owner uid 1337');
  assert.equal(evaluateOutbound(s, '127.0.0.5', 80).rule, 'loopback');
  assert.equal(evaluateOutbound(s, '10.1.2.3', 22).rule, 'exclude port 22');
  assert.equal(evaluateOutbound(s, '10.9.2.3', 80).rule, 'exclude 10.9.0.0/16');
  assert.equal(evaluateOutbound(s, '192.0.2.1', 80).rule, 'not included');
  const v = evaluateOutbound(s, '10.1.2.3', 80, { uid: 1000 });
  assert.equal(v.captured, true);
  assert.equal(v.captured && v.to, 15001);
  assert.equal(evaluateOutbound(s, '2001:db8::1', 80).rule, 'ipv6 off');
});

test('dreammesh explain names the path: bypass, mesh service with route and cluster, egress allowed/denied', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dm-explain-'));
  try {
    const file = join(dir, 'mesh.yaml');
    await writeFile(
      file,
      [
        'transparent:',
        '  enabled: true',
        '  redirect: { proxyUid: 1337, excludeOutboundCidrs: [10.9.0.0/16] }',
        'services:',
        '  users: { endpoints: ["10.1.0.5:8080"], routes: [{ name: canary, match: { pathPrefix: /v2 } }] }',
        'egress: { allow: ["203.0.113.0/24:443"] }',
      ].join('\n'),
    );
    const ex = async (...args: string[]): Promise<string> => (await run(process.execPath, [bin, 'explain', '--config', file, ...args])).stdout;
    assert.match(await ex('10.9.1.1:5432'), /bypassed \(not captured\)\n.*exclude 10\.9\.0\.0\/16/);
    const svc = await ex('10.1.0.5:8080');
    assert.match(svc, /^10\.1\.0\.5:8080: mesh service users/);
    assert.match(svc, /route rule\(s\): canary/);
    assert.match(svc, /cluster "users": 1 endpoint/);
    assert.match(await ex('--uid', '1337', '10.1.0.5:8080'), /owner uid 1337/);
    assert.match(await ex('203.0.113.7:443'), /egress allowed/);
    assert.match(await ex('198.51.100.1:3306'), /egress denied[\s\S]*opaquePorts/);
    const bad = await run(process.execPath, [bin, 'explain', '--config', file, 'nonsense']).then(
      () => assert.fail('expected failure'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(bad.code, 2);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
