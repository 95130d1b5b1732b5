// Differential property tests: DreamMesh's HTTP/1 codec against Node's llhttp (strict), on
// generated well-formed message streams and on mutations of them. The rule (see
// test/helpers/http1-differential.ts): whatever llhttp rejects the codec rejects, at the same
// message or earlier; whatever llhttp accepts the codec accepts with identical boundaries, or
// rejects for a reason on the short STRICTER list.
//
// Reproduce a failure: HTTP1_DIFF_SEED=<seed> (each property prints the run's seed; fast-check
// adds the path of the shrunk counterexample), and the escaped bytes in the failure message can
// be pasted into a corpus case. HTTP1_DIFF_RUNS=<factor>
// scales the number of runs (e.g. 10 for a long soak). HTTP1_DIFF_SKIP_KNOWN=1 skips inputs
// that hit a divergence already pinned by a failing corpus case, to look for new ones.
import { test } from 'node:test';
import fc from 'fast-check';
import { describe as explain, runBoth, type Case, type Outcome } from '../helpers/http1-differential.js';
import { applyEdit, applyStructural, edit, requestStream, responseStream, serialize, structural, type Stream } from '../helpers/http1-generators.js';

/** One seed for the whole file, printed with every property, so any run can be replayed. */
const SEED = process.env.HTTP1_DIFF_SEED ? Number(process.env.HTTP1_DIFF_SEED) : (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;
const FACTOR = Number(process.env.HTTP1_DIFF_RUNS ?? 1);
const SKIP_KNOWN = process.env.HTTP1_DIFF_SKIP_KNOWN === '1';
const runs = (n: number) => Math.max(1, Math.round(n * FACTOR));
const params = (n: number): fc.Parameters<unknown> => ({ numRuns: runs(n), includeErrorInReport: true, seed: SEED });
const replay = `seed ${SEED}: replay with HTTP1_DIFF_SEED=${SEED}`;

/**
 * Divergences already pinned by failing corpus cases (test/fixtures/http1/corpus.ts), skipped
 * only with HTTP1_DIFF_SKIP_KNOWN=1. Remove an entry when the codec is fixed.
 */
const KNOWN: { id: string; corpus: string; hit: (c: Case, o: Outcome) => boolean }[] = [
  // (none open: every divergence the corpus pinned has been fixed in the codec)
];

/** HTTP1_DIFF_STATS=1: how the runs were judged (both accept, both reject, which STRICTER rule...). */
const STATS = process.env.HTTP1_DIFF_STATS === '1' ? new Map<string, number>() : null;
if (STATS)
  process.on('exit', () =>
    console.log(
      [...STATS]
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${String(n).padStart(7)}  ${k}`)
        .join('\n'),
    ),
  );

function check(c: Case, opts: { wellFormed?: boolean } = {}): void {
  const o = runBoth(c);
  if (STATS) {
    const known = !o.ok && KNOWN.find((k) => k.hit(c, o));
    const key = `${c.kind}: ${
      o.ok
        ? o.note
            .replace(/\d+/g, 'N')
            .replace(/\(.*\)/, '')
            .trim()
        : known
          ? `known: ${known.corpus}`
          : 'FAIL'
    }`;
    STATS.set(key, (STATS.get(key) ?? 0) + 1);
  }
  if (SKIP_KNOWN && !o.ok && KNOWN.some((k) => k.hit(c, o))) return;
  if (!o.ok) throw new Error(explain(c, o));
  if (opts.wellFormed) {
    // Generated messages are valid HTTP/1.1: llhttp takes them, and the codec must too, with
    // no help from the STRICTER list.
    if (o.ref.error) throw new Error(`generator produced a message llhttp rejects\n${explain(c, o)}`);
    if (o.got.error) throw new Error(`the codec rejects a well-formed message\n${explain(c, o)}`);
  }
}

const asCase = (s: Stream, bytes = serialize(s)): Case => ({ kind: s.kind, bytes, methods: s.methods });

test('well-formed request streams: same messages, same boundaries', (t) => {
  t.diagnostic(replay);
  fc.assert(
    fc.property(requestStream, (s) => check(asCase(s), { wellFormed: true })),
    params(2500),
  );
});

test('well-formed response streams (HEAD/204/304/1xx/101, close-delimited): same messages, same boundaries', (t) => {
  t.diagnostic(replay);
  fc.assert(
    fc.property(responseStream, (s) => check(asCase(s), { wellFormed: true })),
    params(2500),
  );
});

test('truncated streams: the same complete messages and the same incomplete tail', (t) => {
  t.diagnostic(replay);
  const cut = fc.tuple(fc.oneof(requestStream, responseStream), fc.nat()).map(([s, at]) => {
    const b = serialize(s);
    return asCase(s, b.subarray(0, at % (b.length + 1)));
  });
  fc.assert(
    fc.property(cut, (c) => check(c)),
    params(2000),
  );
});

const mutated = (stream: fc.Arbitrary<Stream>) =>
  fc.tuple(stream, structural, fc.array(edit, { maxLength: 3 })).map(([s, m, edits]) => {
    const t = applyStructural(s, m);
    return asCase(t, edits.reduce(applyEdit, serialize(t)));
  });

test('mutated request streams (smuggling field lines, chunk lines, byte edits): llhttp rejects ⇒ codec rejects', (t) => {
  t.diagnostic(replay);
  fc.assert(
    fc.property(mutated(requestStream), (c) => check(c)),
    params(5000),
  );
});

test('mutated response streams: llhttp rejects ⇒ codec rejects; accepted ⇒ same boundaries', (t) => {
  t.diagnostic(replay);
  fc.assert(
    fc.property(mutated(responseStream), (c) => check(c)),
    params(4000),
  );
});
