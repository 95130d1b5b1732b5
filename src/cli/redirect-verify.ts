// `dreammesh redirect verify`: proves, from inside the namespace, that capture works for this
// sidecar. Run as root where the app runs (it forks probes under other uids):
//   1. capture: as --uid (default: a uid the rules capture) connect to the probe address; the
//      sidecar's admin API (/verify/capture) must have seen that very connection with the
//      probe as its original destination. The probe is never contacted when capture works.
//   2. self-exclusion: the same connection made as the sidecar would make it (SO_MARK
//      proxyMark, else as proxyUid/proxyGid) must NOT reach the sidecar.
//   3. DNS capture (when transparent.redirect.captureDns is on): a lookup of a mesh service
//      name as --uid must be answered.
// Exit 0 with a one-line summary, 1 with the failed check, its reason and the fix.
import { spawn } from 'node:child_process';
import { isIP } from 'node:net';
import type { MeshConfig } from '../config/schema.js';
import { parseListenAddress, formatHostPort } from '../core/address.js';
import { MeshError } from '../core/errors.js';
import { show } from '../steering/rules/apply.js';
import { evaluateOutbound } from '../steering/rules/evaluate.js';
import { cidrContains, parsePort, type RedirectSpec } from '../steering/rules/redirect-spec.js';
import { vipRange } from '../dns/virtual-ips.js';
import { dialTcp } from '../steering/socket-options.js';

export interface VerifyFlags {
  uid?: string | undefined;
  probe?: string | undefined;
  /** How the fix is phrased: the install command line the user ran (or would run). */
  installHint: string;
}

export interface VerifyResult {
  readonly ok: boolean;
  /** One line: the summary (ok) or the failed check with its reason and fix. */
  readonly message: string;
}

interface ProbeOutcome {
  readonly connected: boolean;
  readonly local?: string;
  readonly port?: number;
  readonly error?: string;
}

const PROBE_TIMEOUT_MS = 1500;

// Runs under the probe uid: plain node, no project files (they may not be readable by it).
const PROBE_SCRIPT = `
const net = require('node:net');
const [host, port, ms] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
let done = false;
const out = (o) => { if (done) return; done = true; process.stdout.write(JSON.stringify(o) + '\\n'); setTimeout(() => process.exit(0), 500); };
setTimeout(() => out({ connected: false, error: 'ETIMEDOUT', local: s.localAddress, port: s.localPort }), Number(ms));
s.on('connect', () => out({ connected: true, local: s.localAddress, port: s.localPort }));
s.on('error', (e) => out({ connected: false, error: e.code || e.message, local: s.localAddress, port: s.localPort }));
`;

const DNS_SCRIPT = `
require('node:dns').promises.resolve4(process.argv[1]).then(
  (a) => process.stdout.write(JSON.stringify({ ok: true, addresses: a }) + '\\n'),
  (e) => process.stdout.write(JSON.stringify({ ok: false, error: e.code || e.message }) + '\\n'),
);
`;

function runAs(script: string, args: string[], ids: { uid: number; gid: number }, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script, ...args], { uid: ids.uid, gid: ids.gid, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs + 2000);
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve(out.slice(0, out.indexOf('\n')));
      }
    });
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!out.includes('\n')) reject(new Error(`probe as uid ${ids.uid} exited ${code}: ${err.trim()}`));
    });
  });
}

/** The same probe from this process, as the sidecar connects: with SO_MARK. */
function probeMarked(host: string, port: number, mark: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const s = dialTcp({ host, port, mark });
    let done = false;
    const out = (o: ProbeOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // Answered by the admin query first; closed shortly after.
      setTimeout(() => s.destroy(), 500).unref();
      resolve(o);
    };
    const timer = setTimeout(() => out({ connected: false, error: 'ETIMEDOUT', ...addr() }), PROBE_TIMEOUT_MS);
    const addr = (): { local?: string; port?: number } => ({ ...(s.localAddress !== undefined ? { local: s.localAddress } : {}), ...(s.localPort !== undefined ? { port: s.localPort } : {}) });
    s.once('connect', () => out({ connected: true, ...addr() }));
    s.once('error', (e: NodeJS.ErrnoException) => out({ connected: false, error: e.code ?? e.message, ...addr() }));
  });
}

async function adminGet(admin: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://${admin}${path}`, { signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body };
}

/** Did the sidecar capture the probe's connection? Returns its original destination, or null. */
async function capturedAs(admin: string, o: ProbeOutcome): Promise<string | null> {
  if (o.port === undefined || o.local === undefined) return null;
  const r = await adminGet(admin, `/verify/capture?client=${encodeURIComponent(o.local)}&port=${o.port}`);
  if (r.status !== 200) return null;
  const d = r.body.originalDst as { host: string; port: number } | undefined;
  return d === undefined ? '?' : formatHostPort(d.host, d.port);
}

function parseProbe(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (m === null || isIP(m[1]!) === 0) throw new MeshError('MESH_ERR_REDIRECT_INVALID', `--probe: "${s}" is not ip:port (an address literal; it is never contacted when capture works)`);
  return { host: m[1]!, port: parsePort(m[2]!, '--probe') };
}

function parseUid(s: string): number {
  if (!/^\d{1,10}$/.test(s) || Number(s) > 4294967294) throw new MeshError('MESH_ERR_REDIRECT_INVALID', `--uid: "${s}" is not a numeric uid`);
  return Number(s);
}

export async function verify(config: MeshConfig, spec: RedirectSpec, flags: VerifyFlags): Promise<VerifyResult> {
  const fail = (message: string): VerifyResult => ({ ok: false, message });
  const admin = parseListenAddress(config.listeners.admin);
  if (admin?.kind !== 'tcp' || admin.port === 0) return fail(`listeners.admin (${config.listeners.admin}) is not a fixed TCP address: verify asks the sidecar's admin API what it captured`);
  const adminAddr = formatHostPort(admin.host === '0.0.0.0' ? '127.0.0.1' : admin.host === '::' ? '::1' : admin.host, admin.port);
  const probe = parseProbe(flags.probe ?? '192.0.2.1:80');
  // A uid the rules capture: nobody, unless that is the proxy's own.
  const uid = flags.uid !== undefined ? parseUid(flags.uid) : spec.proxyUid === 65534 ? 65533 : 65534;
  const gid = spec.proxyGid === uid ? 65533 : uid;
  const verdict = evaluateOutbound(spec, probe.host, probe.port, { uid, gid });
  if (!verdict.captured) return fail(`the probe ${formatHostPort(probe.host, probe.port)} as uid ${uid} is not captured by these settings (${verdict.why}): pass --probe with an address and port the rules capture`);

  try {
    await adminGet(adminAddr, '/live');
  } catch (e) {
    return fail(`the sidecar's admin API at ${adminAddr} does not answer (${(e as Error).message}): start the sidecar (\`dreammesh run\`) in this namespace, with transparent.enabled`);
  }
  const rules = show(spec);
  const notInstalled = `run \`${flags.installHint}\``;

  // 1. An application connection is captured by this sidecar, with the right original destination.
  const app = JSON.parse(await runAs(PROBE_SCRIPT, [probe.host, String(probe.port), String(PROBE_TIMEOUT_MS)], { uid, gid }, PROBE_TIMEOUT_MS)) as ProbeOutcome;
  const seen = await capturedAs(adminAddr, app);
  const target = formatHostPort(probe.host, probe.port);
  if (seen === null) {
    if (!rules.installed) return fail(`outbound connections from uid ${uid} are not captured: no capture rules are installed (backend ${rules.backend}): ${notInstalled}`);
    if (!app.connected && (app.error === 'ENETUNREACH' || app.error === 'EHOSTUNREACH')) {
      return fail(`no route to the probe ${target} in this namespace (${app.error}), so the kernel refused the connection before capture: pass --probe with an address the app can route to (it is not contacted)`);
    }
    if (!app.connected && app.error === 'ECONNREFUSED') return fail(`connections from uid ${uid} are redirected, but nothing listens on port ${spec.outboundPort}: is the sidecar's outbound listener on that port?`);
    const drift = rules.matches ? '' : ` (installed rules differ from the config: ${rules.differences.join('; ')})`;
    if (!app.connected) return fail(`outbound connections from uid ${uid} are not captured (probe ${target}: ${app.error ?? 'failed'})${drift}: ${notInstalled}`);
    return fail(
      `the probe from uid ${uid} to ${target} connected, but not through this sidecar (its admin API did not see it)${drift}: another proxy holds port ${spec.outboundPort}, or transparent.enabled is off; ${notInstalled}`,
    );
  }
  if (seen !== target) return fail(`uid ${uid}'s connection to ${target} reached the sidecar with original destination ${seen}: conntrack/NAT lost the destination`);

  // 2. The sidecar's own connections are not captured (no loop).
  let self: string;
  let own: ProbeOutcome;
  if (spec.proxyMark !== undefined) {
    self = `SO_MARK 0x${spec.proxyMark.toString(16)}`;
    own = await probeMarked(probe.host, probe.port, spec.proxyMark);
  } else {
    const pu = spec.proxyUid ?? uid;
    const pg = spec.proxyGid ?? (spec.proxyUid !== undefined ? spec.proxyUid : uid);
    self = spec.proxyUid !== undefined ? `uid ${pu}` : `gid ${pg}`;
    own = JSON.parse(await runAs(PROBE_SCRIPT, [probe.host, String(probe.port), String(PROBE_TIMEOUT_MS)], { uid: pu, gid: pg }, PROBE_TIMEOUT_MS)) as ProbeOutcome;
  }
  if ((await capturedAs(adminAddr, own)) !== null) {
    return fail(`the sidecar's own traffic (${self}) is captured too, so its upstream connections would loop: reinstall the rules with the sidecar's --proxy-uid/--proxy-gid/--proxy-mark (${notInstalled})`);
  }

  // 3. DNS capture answers (when configured): the app's lookup of a mesh name must come back
  // with a virtual IP of dns.cidr, which only this sidecar's DNS listener hands out.
  let dns = '';
  if (spec.dns !== undefined) {
    const name = Object.keys(config.services)[0];
    if (name === undefined) dns = ', DNS capture not checked (no inline service to look up)';
    else {
      const r = JSON.parse(await runAs(DNS_SCRIPT, [name], { uid, gid }, 3000)) as { ok: boolean; addresses?: string[]; error?: string };
      if (!r.ok) return fail(`DNS capture does not answer: uid ${uid} looked up "${name}" and got ${r.error ?? 'nothing'}: check dns.enabled and reinstall with --capture-dns`);
      const range = vipRange(config.dns.cidr);
      const addresses = r.addresses ?? [];
      if (!addresses.some((a) => cidrContains(range, a))) {
        return fail(
          `DNS is not captured: uid ${uid} looked up "${name}" and got ${addresses.join(' ') || 'no address'}, not a virtual IP of ${config.dns.cidr}, so another resolver answered: reinstall with --capture-dns`,
        );
      }
      dns = `, DNS "${name}" → ${addresses.join(' ')}`;
    }
  }
  return { ok: true, message: `capture ok: uid ${uid} → ${target} reached this sidecar (original destination ${seen}), its own traffic (${self}) is not captured${dns} [backend ${rules.backend}]` };
}
