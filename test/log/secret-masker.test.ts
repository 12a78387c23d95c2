import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SecretMasker } from '../../lib/log/secret-masker.ts';

function run(secrets: string[], chunks: string[]): string {
  const m = new SecretMasker(secrets);
  const out = chunks.map((c) => Buffer.concat(m.push(Buffer.from(c))).toString());
  return out.join('') + Buffer.concat(m.flush()).toString();
}

test('a secret is replaced wherever it appears', () => {
  assert.equal(run(['hunter2'], ['password=hunter2; again hunter2\n']), 'password=[*****]; again [*****]\n');
});

test('a secret split across chunks is still masked', () => {
  assert.equal(run(['hunter2'], ['pass hun', 'ter2 done']), 'pass [*****] done');
  assert.equal(run(['hunter2'], ['h', 'u', 'n', 't', 'e', 'r', '2', '!']), '[*****]!');
});

test('every split point of every secret is masked', () => {
  const secrets = ['s3cr3t-value', 'abc'];
  const text = 'x s3cr3t-value y abc z abs3cr3t-valueabc';
  const expected = 'x [*****] y [*****] z ab[*****][*****]';
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) {
      assert.equal(run(secrets, [text.slice(0, i), text.slice(i, j), text.slice(j)]), expected, `split at ${i},${j}`);
    }
  }
});

test('a partial secret at the very end is written unmasked', () => {
  assert.equal(run(['hunter2'], ['ends with hunt']), 'ends with hunt');
});

test('the longer of two secrets starting at the same place wins', () => {
  assert.equal(run(['tok', 'token-123'], ['a token-123 b tok']), 'a [*****] b [*****]');
});

test('multi-byte secrets split inside a character are masked', () => {
  const m = new SecretMasker(['pässwörd']);
  const bytes = Buffer.from('x pässwörd y');
  const out = Buffer.concat([...m.push(bytes.subarray(0, 4)), ...m.push(bytes.subarray(4)), ...m.flush()]);
  assert.equal(out.toString(), 'x [*****] y');
});

test('without secrets chunks pass through untouched', () => {
  const m = new SecretMasker(['']);
  const chunk = Buffer.from('hello');
  assert.deepEqual(m.push(chunk), [chunk]);
  assert.equal(m.push(chunk)[0], chunk, 'the same buffer, not a copy');
  assert.equal(m.flush().length, 0);
});

test('many chunk sizes and secret lengths agree with a one-shot replacement', () => {
  const secrets = ['ab', 'abcab', 'xyzzy-long-secret-value', 'b'];
  const alphabet = 'abcxyz-lonsecrtvu ';
  let seed = 7;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  for (let round = 0; round < 500; round++) {
    let text = '';
    const len = rand(200);
    for (let i = 0; i < len; i++) text += rand(10) === 0 ? secrets[rand(secrets.length)] : alphabet[rand(alphabet.length)];
    // Reference: greedy left-to-right, longest secret first at the same position.
    let expected = '';
    for (let i = 0; i < text.length;) {
      const hit = [...secrets].sort((a, b) => b.length - a.length).find((s) => text.startsWith(s, i));
      if (hit) { expected += '[*****]'; i += hit.length; } else { expected += text[i]; i++; }
    }
    const chunks: string[] = [];
    for (let i = 0; i < text.length;) { const n = 1 + rand(30); chunks.push(text.slice(i, i + n)); i += n; }
    assert.equal(run(secrets, chunks), expected, JSON.stringify(chunks));
  }
});
