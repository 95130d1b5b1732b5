// `dreammesh ca init`, `dreammesh cert issue` and `dreammesh validate` of an mtls section, run
// as the real CLI: what they write, and one clear line with exit code 2 for each bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { dreammesh, caInit, issue } from '../helpers/mtls-mesh.js';

test('ca init and cert issue write an ECDSA P-256 SVID with the SPIFFE URI, key files 0600', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dm-ca-'));
  const r = await dreammesh('ca', 'init', '--dir', join(dir, 'ca'), '--trust-domain', 'example.org');
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await stat(join(dir, 'ca', 'ca-key.pem'))).mode & 0o777, 0o600);
  const out = await dreammesh('cert', 'issue', '--ca', join(dir, 'ca'), '--service', 'users', '--out', join(dir, 'users'), '--ttl', '2h');
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /spiffe:\/\/example\.org\/service\/users/);
  const cert = new X509Certificate(await readFile(join(dir, 'users', 'cert.pem')));
  const ca = new X509Certificate(await readFile(join(dir, 'users', 'ca.pem')));
  assert.equal(cert.subjectAltName, 'URI:spiffe://example.org/service/users');
  assert.ok(cert.verify(ca.publicKey));
  const key = createPrivateKey(await readFile(join(dir, 'users', 'key.pem')));
  assert.equal(key.asymmetricKeyType, 'ec');
  assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(cert.checkPrivateKey(key));
  const hours = (new Date(cert.validTo).getTime() - Date.now()) / 3_600_000;
  assert.ok(hours > 1.9 && hours <= 2.01, `lifetime ${hours} h`);
  assert.equal((await stat(join(dir, 'users', 'key.pem'))).mode & 0o777, 0o600);
});

test('bad input: one clear line and exit code 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dm-ca-bad-'));
  await caInit(join(dir, 'ca'));
  await mkdir(join(dir, 'empty'));
  const cases: [string[], RegExp][] = [
    [['cert', 'issue', '--ca', join(dir, 'nope'), '--service', 'x', '--out', join(dir, 'o')], /does not exist/],
    [['cert', 'issue', '--ca', join(dir, 'ca'), '--service', 'x', '--out', join(dir, 'o'), '--ttl', '10 years'], /--ttl: .* is not a duration/],
    [['cert', 'issue', '--ca', join(dir, 'ca'), '--service', 'bad/name', '--out', join(dir, 'o')], /--service: .* is not a service name/],
    [['cert', 'issue', '--ca', join(dir, 'empty'), '--service', 'x', '--out', join(dir, 'o')], /holds no ca\.pem and ca-key\.pem/],
    [['cert', 'issue', '--service', 'x', '--out', join(dir, 'o')], /--ca is required/],
    [['ca', 'init', '--dir', join(dir, 'ca')], /already exists; refusing to replace a CA/],
    [['ca', 'init', '--dir', join(dir, 'ca2'), '--trust-domain', 'Bad Domain'], /--trust-domain/],
    [['ca', 'init'], /--dir is required/],
    [['ca', 'frobnicate'], /unknown subcommand/],
  ];
  for (const [args, message] of cases) {
    const r = await dreammesh(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.split('\n')[0]!, message);
  }
});

test('validate checks the mtls files: key pair, SPIFFE ID naming the service, missing files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'dm-ca-validate-'));
  await caInit(join(dir, 'ca'));
  const users = await issue(join(dir, 'ca'), 'users', join(dir, 'users'));
  const other = await issue(join(dir, 'ca'), 'other', join(dir, 'other'));
  const validate = async (mtls: Record<string, unknown>, service = 'users'): Promise<{ code: number; stdout: string; stderr: string }> => {
    const file = join(dir, 'mesh.yaml');
    await writeFile(file, stringify({ service, app: '127.0.0.1:8080', listeners: { inbound: '127.0.0.1:15006' }, mtls }));
    return dreammesh('validate', file);
  };
  const ok = await validate({ mode: 'strict', certFile: users.cert, keyFile: users.key, caFile: users.ca });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /checked: mtls identity spiffe:\/\/dreammesh\.local\/service\/users/);
  const wrongService = await validate({ mode: 'strict', certFile: users.cert, keyFile: users.key, caFile: users.ca }, 'billing');
  assert.equal(wrongService.code, 1);
  assert.match(wrongService.stderr, /MESH_ERR_IDENTITY_INVALID: .*names spiffe:\/\/dreammesh\.local\/service\/users, but service is "billing"/);
  const mismatch = await validate({ mode: 'permissive', certFile: users.cert, keyFile: other.key, caFile: users.ca });
  assert.equal(mismatch.code, 1);
  assert.match(mismatch.stderr, /the key does not match the certificate/);
  const missing = await validate({ mode: 'strict', certFile: join(dir, 'nope.pem'), keyFile: users.key, caFile: users.ca });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /mtls\.certFile: cannot read .*nope\.pem: ENOENT/);
  const none = await validate({ mode: 'strict' });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /certFile, keyFile and caFile are all required when mode is strict/);
});
