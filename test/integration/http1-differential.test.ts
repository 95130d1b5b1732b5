// A small differential check of the engine against Node's own llhttp, end to end, at every
// entry (explicit, forward proxy, inbound) of a sidecar process. Each request of a corpus of
// valid and awkward messages goes to a node:http server (llhttp, strict settings) and through
// the sidecar. Whatever llhttp refuses, the engine must refuse (400, nothing forwarded): it is
// to be at least as strict. Whatever llhttp accepts, the engine must serve too, except for a
// listed few where the engine is meant to be stricter or the RFC leaves the choice (the reason
// is given with each).
import { describe, test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startMesh, ENTRY_NAMES, finals, describeResult, via, type Mesh, type Entry } from '../helpers/http1-mesh.js';
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
