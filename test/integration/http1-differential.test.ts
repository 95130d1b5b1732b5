// A small differential check of the engine against Node's own llhttp, end to end, at every
// entry (explicit, forward proxy, inbound) of a sidecar process, for requests and responses.
// Requests: each request of a corpus of
// valid and awkward messages goes to a node:http server (llhttp, strict settings) and through
// the sidecar. Whatever llhttp refuses, the engine must refuse (400, nothing forwarded): it is
// to be at least as strict. Whatever llhttp accepts, the engine must serve too, except for a
// listed few where the engine is meant to be stricter or the RFC leaves the choice (the reason
// is given with each).
// Responses: the upstream answers each response of a corpus; Node's http client (llhttp) reads
// the same bytes. What llhttp refuses must never reach the client as a complete response (a
// 502 MESH_ERR_UPSTREAM_PROTOCOL, or a cut connection once the head went out); what it accepts
// must reach the client with the same status and body.
import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { startMesh, ENTRY_NAMES, finals, describeResult, errorCode, via, type Mesh, type Entry } from '../helpers/http1-mesh.js';
import { rawRequest } from '../helpers/http1-wire.js';

/** {T} = request-target, {H} = Host value. */
const POST = 'POST {T} HTTP/1.1\r\nHost: {H}\r\n';
const CORPUS: Record<string, string> = {
  'plain GET': 'GET {T} HTTP/1.1\r\nHost: {H}\r\n\r\n',
  'chunk extension, quoted': POST + 'Transfer-Encoding: chunked\r\n\r\n5;a="b c"\r\nhello\r\n0\r\n\r\n',
  'chunk extension, token': POST + 'Transfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n',
  'chunk size with trailing space': POST + 'Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n',
  'chunk size with leading zeros': POST + 'Transfer-Encoding: chunked\r\n\r\n0005\r\nhello\r\n0\r\n\r\n',
  'chunk size of 17 hex digits': POST + 'Transfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n',
  'empty chunk extension': POST + 'Transfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n',
  'a trailer line that is a request line': POST + 'Transfer-Encoding: chunked\r\n\r\n0\r\nGET /smuggled HTTP/1.1\r\nHost: {H}\r\n\r\n',
  'a folded trailer': POST + 'Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n b\r\n\r\n',
  'a folded header': 'GET {T} HTTP/1.1\r\nHost: {H}\r\nX-A: a\r\n b\r\n\r\n',
  'Transfer-Encoding: chunked twice': POST + 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'Transfer-Encoding: chunked, chunked': POST + 'Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n',
  'Transfer-Encoding: CHUNKED': POST + 'Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n',
  'Transfer-Encoding: identity': POST + 'Transfer-Encoding: identity\r\n\r\n',
  'Content-Length with leading zeros': POST + 'Content-Length: 005\r\n\r\nhello',
  'Content-Length after a tab': POST + 'Content-Length:\t5\r\n\r\nhello',
  'Content-Length with trailing space': POST + 'Content-Length: 5 \r\n\r\nhello',
  'Content-Length of 20 digits': POST + 'Content-Length: 99999999999999999999\r\n\r\n',
  'a tab inside a value': 'GET {T} HTTP/1.1\r\nHost: {H}\r\nX-A: a\tb\r\n\r\n',
  'an empty value': 'GET {T} HTTP/1.1\r\nHost: {H}\r\nX-A:\r\n\r\n',
  'a header line without colon': 'GET {T} HTTP/1.1\r\nHost: {H}\r\nX-A\r\n\r\n',
  'a slash in a header name': 'GET {T} HTTP/1.1\r\nHost: {H}\r\nX/A: b\r\n\r\n',
  'DEL in a value': 'GET {T} HTTP/1.1\r\nHost: {H}\r\nX-A: b\x7fc\r\n\r\n',
  'two Host fields': 'GET {T} HTTP/1.1\r\nHost: {H}\r\nHost: other\r\n\r\n',
  'a lower-case method': 'get {T} HTTP/1.1\r\nHost: {H}\r\n\r\n',
  'HTTP/1.2': 'GET {T} HTTP/1.2\r\nHost: {H}\r\n\r\n',
  'two spaces after the method': 'GET  {T} HTTP/1.1\r\nHost: {H}\r\n\r\n',
  'a space inside the target': 'GET {T} y HTTP/1.1\r\nHost: {H}\r\n\r\n',
  'DEL in the target': 'GET {T}\x7f HTTP/1.1\r\nHost: {H}\r\n\r\n',
  'raw UTF-8 in the target': 'GET {T}caf\xc3\xa9 HTTP/1.1\r\nHost: {H}\r\n\r\n',
  'an empty line before the request': '\r\nGET {T} HTTP/1.1\r\nHost: {H}\r\n\r\n',
  'CR-only line ends': 'GET {T} HTTP/1.1\rHost: {H}\r\r',
  'whitespace before the first header': 'GET {T} HTTP/1.1\r\n Host: {H}\r\n\r\n',
};

/** Accepted by llhttp, refused by the engine on purpose. */
const STRICTER: Record<string, string> = {
  'two Host fields': 'RFC 9112 3.2: a request with more than one Host field gets a 400',
};
/** Accepted by llhttp; the RFC lets a recipient accept or refuse it. */
const EITHER: Record<string, string> = {
  'two spaces after the method': 'RFC 9112 3: recipients MAY parse on whitespace boundaries, SHOULD otherwise answer 400',
};

let oracle: Server;
let oraclePort: number;
let mesh: Mesh;
let seq = 0;

before(async () => {
  oracle = createServer({ requireHostHeader: true }, (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => oracle.listen(0, '127.0.0.1', r));
  oraclePort = (oracle.address() as AddressInfo).port;
  mesh = await startMesh();
});
beforeEach(async () => {
  await mesh?.revive();
});
after(async () => {
  await mesh?.stop();
  oracle?.closeAllConnections();
  await new Promise<void>((r) => oracle?.close(() => r()));
});

async function llhttpAccepts(bytes: string): Promise<boolean> {
  const r = await rawRequest(`127.0.0.1:${oraclePort}`, [{ write: bytes }], { untilResponses: 1, ms: 1500 });
  const status = finals(r)[0]?.status ?? 0;
  return status >= 200 && status < 300;
}

for (const name of ENTRY_NAMES) {
  describe(`${name} entry`, () => {
    for (const [label, template] of Object.entries(CORPUS)) {
      test(label, async () => {
        const e: Entry = mesh.entry(name);
        const t = `/diff-${++seq}_`;
        const accepts = await llhttpAccepts(template.replaceAll('{T}', '/x').replaceAll('{H}', 'a'));
        const bytes = template.replaceAll('{T}', e.target(t)).replaceAll('{H}', e.host);
        const r = await via(e, [{ write: bytes }], { untilResponses: 1, ms: 3000 });
        const status = finals(r)[0]?.status ?? 0;
        if (!accepts) {
          assert.ok(status >= 400 && status < 500, `llhttp refuses this; the engine must too (a 4xx): ${describeResult(r)}`);
          assert.equal(mesh.seenWith(t).length, 0, 'a request llhttp refuses reached the upstream');
        } else if (EITHER[label] !== undefined) {
          assert.ok(status === 200 || status === 400, `${EITHER[label]}: ${describeResult(r)}`);
        } else if (STRICTER[label] !== undefined) {
          assert.ok(status === 400, `meant to be refused (${STRICTER[label]}): ${describeResult(r)}`);
        } else {
          assert.equal(status, 200, `llhttp accepts this; the engine should serve it: ${describeResult(r)}`);
        }
        await mesh.alive(e, label);
      });
    }
  });
}

const RESPONSES: Record<string, string> = {
  plain: 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello',
  'no reason phrase': 'HTTP/1.1 200\r\ncontent-length: 5\r\n\r\nhello',
  'empty reason phrase': 'HTTP/1.1 200 \r\ncontent-length: 5\r\n\r\nhello',
  'HTTP/1.0': 'HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\nhello',
  'close-delimited': 'HTTP/1.1 200 OK\r\n\r\nhello',
  'chunk extension': 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\n\r\n',
  'a trailer': 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n',
  'Content-Length and chunked': 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'two different Content-Lengths': 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 2\r\n\r\nhello',
  'two equal Content-Lengths': 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 5\r\n\r\nhello',
  'Content-Length: 5, 5': 'HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\nhello',
  'Content-Length: -5': 'HTTP/1.1 200 OK\r\ncontent-length: -5\r\n\r\nhello',
  'a bad chunk size': 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  'a header line without colon': 'HTTP/1.1 200 OK\r\nx-a\r\ncontent-length: 5\r\n\r\nhello',
  'a folded header': 'HTTP/1.1 200 OK\r\nx-a: a\r\n b\r\ncontent-length: 5\r\n\r\nhello',
  'a space before the colon': 'HTTP/1.1 200 OK\r\ncontent-length : 5\r\n\r\nhello',
  'NUL in a value': 'HTTP/1.1 200 OK\r\nx-a: a\x00b\r\ncontent-length: 5\r\n\r\nhello',
  'a bare CR in a value': 'HTTP/1.1 200 OK\r\nx-a: a\rb\r\ncontent-length: 5\r\n\r\nhello',
  'a two-digit status': 'HTTP/1.1 20 OK\r\ncontent-length: 5\r\n\r\nhello',
  'a four-digit status': 'HTTP/1.1 2000 OK\r\ncontent-length: 5\r\n\r\nhello',
  'bare LF line ends': 'HTTP/1.1 200 OK\ncontent-length: 5\n\nhello',
  'an empty line first': '\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello',
  'lower-case http': 'http/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello',
  'Transfer-Encoding: gzip (until close)': 'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nhello',
  'Transfer-Encoding: gzip, chunked': 'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'a tab in the reason phrase': 'HTTP/1.1 200 O\tK\r\ncontent-length: 5\r\n\r\nhello',
  'UTF-8 in the reason phrase': 'HTTP/1.1 200 \xc3\xa9\r\ncontent-length: 5\r\n\r\nhello',
};
/** Accepted by llhttp; relaying or refusing (502) are both reasonable for a proxy. */
const RESPONSE_EITHER: Record<string, string> = {
  'two equal Content-Lengths': 'RFC 9110 8.6 lets a recipient take one of identical values',
};

/** What Node's http client makes of `bytes` as a response: status and body, or a parse error. */
async function llhttpReads(bytes: Buffer): Promise<{ status: number; body: string } | { error: string }> {
  const srv = createTcpServer((s) => {
    s.on('error', () => {});
    s.once('data', () => {
      s.write(bytes);
      setTimeout(() => s.end(), 20);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    return await new Promise((resolve) => {
      const q = httpRequest({ host: '127.0.0.1', port: (srv.address() as AddressInfo).port, path: '/', agent: false }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
      });
      q.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
      q.end();
    });
  } finally {
    srv.close();
  }
}

for (const name of ENTRY_NAMES) {
  describe(`${name} entry: upstream responses`, () => {
    for (const [label, text] of Object.entries(RESPONSES)) {
      test(label, async () => {
        const e: Entry = mesh.entry(name);
        const bytes = Buffer.from(text, 'latin1');
        const oracleSays = await llhttpReads(bytes);
        const r = await via(e, [{ write: e.head('GET', '/respond', [['x-respond-b64', bytes.toString('base64')]]) }], { ms: 3000, untilResponses: 1 });
        const f = finals(r)[0];
        if ('error' in oracleSays) {
          const refused = f?.status === 502 && errorCode(f) === 'MESH_ERR_UPSTREAM_PROTOCOL';
          const cut = f !== undefined && f.status !== 502 && !f.complete && r.closed;
          assert.ok(refused || cut || f === undefined, `llhttp refuses this response (${oracleSays.error}); the client must get a 502 MESH_ERR_UPSTREAM_PROTOCOL or a cut response, got: ${describeResult(r)}`);
        } else if (RESPONSE_EITHER[label] !== undefined && f?.status === 502) {
          assert.equal(errorCode(f), 'MESH_ERR_UPSTREAM_PROTOCOL');
        } else {
          assert.equal(f?.status, oracleSays.status, `llhttp reads status ${oracleSays.status}: ${describeResult(r)}`);
          assert.equal(f?.body.toString('latin1'), oracleSays.body, `llhttp reads the body ${JSON.stringify(oracleSays.body)}: ${describeResult(r)}`);
        }
        await mesh.alive(e, label);
      });
    }
  });
}
