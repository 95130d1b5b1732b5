// The llhttp oracle (test/helpers/llhttp-oracle.ts) itself: that it reports what Node's parser
// sees, strictly, with the offsets the differential tests rely on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METHODS } from 'node:http';
import { llhttpScanRequests, llhttpScanResponses } from '../helpers/llhttp-oracle.js';

const b = (s: string) => Buffer.from(s, 'latin1');

test('pipelined requests: each message with its end offset, and the incomplete tail', () => {
  const r = llhttpScanRequests(b('GET /a HTTP/1.1\r\nHost: h\r\nX:  v \t\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /c'));
  assert.equal(r.error, null);
  assert.deepEqual(
    r.messages.map((m) => [m.method, m.target, m.end, m.body.toString()]),
    [
      ['GET', '/a', 37, ''],
      ['POST', '/b', 88, 'abc'],
    ],
  );
  assert.deepEqual(r.messages[0]!.headers, [
    ['Host', 'h'],
    ['X', 'v'],
  ]);
  assert.equal(r.rest, 6);
});

test('every method in http.METHODS is named as node:http names it', () => {
  for (const m of METHODS) {
    const target = m === 'CONNECT' ? 'a:1' : '/';
    const r = llhttpScanRequests(b(`${m} ${target} HTTP/1.1\r\nHost: a\r\n\r\n`));
    assert.equal(r.messages[0]?.method, m, m);
  }
});

test('chunked body with extensions and trailers; more than 32 header fields', () => {
  const many = Array.from({ length: 40 }, (_, i) => `H${i}: ${i}\r\n`).join('');
  const r = llhttpScanRequests(b(`POST / HTTP/1.1\r\nHost: h\r\n${many}Transfer-Encoding: chunked\r\n\r\n3;a="b"\r\nabc\r\n0\r\nT: 1\r\n\r\n`));
  assert.equal(r.error, null);
  assert.equal(r.messages[0]!.headers.length, 42);
  assert.equal(r.messages[0]!.body.toString(), 'abc');
  assert.deepEqual(r.messages[0]!.trailers, [['T', '1']]);
  assert.equal(r.rest, 0);
});

test('strict: no lenient flags (bare LF, obs-fold, CL+TE are errors), with the offending offset', () => {
  for (const s of ['GET / HTTP/1.1\nHost: h\n\n', 'GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n', 'POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n']) {
    assert.notEqual(llhttpScanRequests(b(s)).error, null, JSON.stringify(s));
  }
  assert.equal(llhttpScanRequests(b('GET / HTTP/1.1\r\nX: a\x00\r\n\r\n')).error?.offset, 20);
});

test('upgrades: the message ends at its head (or body), the rest is another protocol', () => {
  const r = llhttpScanRequests(b('GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x00'));
  assert.equal(r.messages[0]!.upgrade, true);
  assert.equal(r.rest, 2);
  const s = llhttpScanResponses(b('HTTP/1.1 101 Switching\r\n\r\nxyz'), ['GET']);
  assert.deepEqual([s.messages.length, s.messages[0]!.upgrade, s.rest], [1, true, 3]);
  const c = llhttpScanResponses(b('HTTP/1.1 200 OK\r\n\r\ntunnel'), ['CONNECT']);
  assert.deepEqual([c.messages[0]!.upgrade, c.messages[0]!.body.length, c.rest], [true, 0, 6]);
});

test('an error inside the body of an upgrade request is reported (Node hides it)', () => {
  const r = llhttpScanRequests(b('GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'));
  assert.equal(r.error?.code, 'HPE_ERROR_IN_UPGRADE_BODY');
});

test('responses: HEAD and 204/304 have no body, 1xx are their own messages, no length means until EOF', () => {
  const r = llhttpScanResponses(b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.1 304 NM\r\n\r\nHTTP/1.0 200 OK\r\n\r\nto the end'), ['HEAD', 'GET', 'GET']);
  assert.equal(r.error, null);
  assert.deepEqual(
    r.messages.map((m) => [m.status, m.body.toString()]),
    [
      [100, ''],
      [200, ''],
      [304, ''],
      [200, 'to the end'],
    ],
  );
  assert.equal(r.rest, 0);
});
