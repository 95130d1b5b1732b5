// Public HTTP/1 conformance and smuggling cases (test/fixtures/http1/corpus.ts), each run
// through Node's llhttp (strict) and the codec and judged by the differential rule: the codec
// rejects what llhttp rejects, and accepts what llhttp accepts with the same boundaries, or
// rejects it for a listed, deliberate reason (STRICTER).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CORPUS, type CorpusCase } from '../fixtures/http1/corpus.js';
import { describe as explain, runBoth, type Case } from '../helpers/http1-differential.js';

const toCase = (c: CorpusCase): Case => ({ kind: c.kind, bytes: Buffer.from(c.bytes, 'latin1'), methods: c.methods });

test('corpus ids are unique', () => {
  assert.equal(new Set(CORPUS.map((c) => c.id)).size, CORPUS.length);
});

for (const c of CORPUS) {
  test(`${c.id}: ${c.note} [${c.from}]`, () => {
    const k = toCase(c);
    const o = runBoth(k);
    // The oracle is strict llhttp: its verdict is the one the public source documents.
    const last = o.ref.messages[o.ref.messages.length - 1];
    const llhttp = o.ref.error ? 'reject' : o.ref.rest > 0 && !last?.upgrade ? 'incomplete' : 'accept';
    assert.equal(llhttp, c.llhttp, `llhttp verdict for ${c.id}\n${explain(k, o)}`);
    assert.ok(o.ok, explain(k, o));
  });
}
