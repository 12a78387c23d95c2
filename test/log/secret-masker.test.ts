import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_SECRET_LENGTH, SecretMasker, maskedForms } from '../../lib/log/secret-masker.ts';

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
  const secrets = ['s3cr3t-value', 'abcdef'];
  const text = 'x s3cr3t-value y abcdef z abs3cr3t-valueabcdef';
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
  assert.equal(run(['token-', 'token-123'], ['a token-123 b token-']), 'a [*****] b [*****]');
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
  // Overlapping secrets (one the prefix or inside another); the reference masks every form.
  const given = ['ababab', 'abababcab', 'xyzzy-long-secret-value', 'bbbbbb'];
  const secrets = given.flatMap((s) => maskedForms(s));
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
    assert.equal(run(given, chunks), expected, JSON.stringify(chunks));
  }
});

test(`secrets shorter than ${MIN_SECRET_LENGTH} characters are not masked`, () => {
  assert.equal(MIN_SECRET_LENGTH, 6);
  assert.equal(run(['12345', 'abc', 'x', ''], ['id 12345 abc x\n']), 'id 12345 abc x\n');
  assert.equal(run(['123456'], ['id 123456\n']), 'id [*****]\n');
  // Characters, not bytes: five two-byte characters are still too short.
  assert.equal(run(['ääääö'], ['ääääö']), 'ääääö');
  const m = new SecretMasker(['short']);
  assert.equal(m.hasSecrets, false, 'a short secret alone leaves the stream untouched');
});

test('a secret printed one character at a time, each its own chunk, is masked; nothing of it is released early', () => {
  const secret = 'Zq9-one-char-at-a-time';
  const m = new SecretMasker([secret]);
  let released = '';
  for (const ch of `token=${secret} done\n`) {
    released += Buffer.concat(m.push(Buffer.from(ch))).toString();
    assert.ok(!released.includes('Zq'), `part of the secret was released: ${JSON.stringify(released)}`);
  }
  released += Buffer.concat(m.flush()).toString();
  assert.equal(released, 'token=[*****] done\n');
});

test('a secret split across chunks at every point, in base64 too', () => {
  const secret = 'hunter2-secret';
  const b64 = Buffer.from(secret).toString('base64');
  for (const text of [`a ${secret} b`, `Authorization: Basic ${b64}`]) {
    for (let i = 0; i <= text.length; i++) {
      const out = run([secret], [text.slice(0, i), text.slice(i)]);
      assert.ok(!out.includes(secret) && !out.includes(b64.slice(0, -4)), `split at ${i}: ${out}`);
      assert.ok(out.includes('[*****]'));
    }
  }
});

test('a secret is masked when it appears base64-encoded, alone or inside a longer encoded text, at any alignment', () => {
  const secret = 'p4ssw0rd+/?>~value';
  for (let before = 0; before < 6; before++) {
    for (const after of ['', 'x', 'xy', '\n']) {
      const plain = Buffer.from(`${'u'.repeat(before)}${before ? ':' : ''}${secret}${after}`);
      for (const [alphabet, encoded] of [['base64', plain.toString('base64')], ['base64url', plain.toString('base64url')]] as const) {
        const out = run([secret], [`echo ${encoded} |`]);
        assert.match(out, /\[\*\*\*\*\*\]/, `${alphabet}, ${before} before, ${JSON.stringify(after)} after: ${out}`);
        // What is left of the encoding around the mask is at most the partly-secret edges.
        const left = out.replace(/^echo /, '').replace(/ \|$/, '').split('[*****]').join('');
        assert.ok(left.replace(/=+$/, '').length <= Math.ceil((before + (before ? 1 : 0)) * 4 / 3) + 4, `${alphabet} ${before}/${JSON.stringify(after)}: too much left: ${out}`);
        // Decoding what remains cannot give back the secret.
        assert.ok(!Buffer.from(out, 'base64').toString('latin1').includes(secret.slice(0, 6)));
      }
    }
  }
});

test('the base64 forms of a secret are the parts of its encoding independent of its neighbours', () => {
  const forms = maskedForms('123456');
  assert.equal(forms[0], '123456');
  assert.ok(forms.includes('MTIzNDU2'), 'aligned: the whole encoding');
  for (const prefix of ['a', 'ab', 'abc', 'abcd']) {
    const encoded = Buffer.from(`${prefix}123456zz`).toString('base64');
    assert.ok(forms.some((f) => f !== '123456' && encoded.includes(f)), `${prefix}: ${encoded} holds none of ${forms}`);
  }
  assert.ok(forms.every((f) => f.length >= 6));
});

test('a multi-line secret is masked as a TTY prints it (CRLF) and line by line', () => {
  const key = '-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n-----END KEY-----\n';
  assert.equal(run([key], [`cat key:\r\n${key.replace(/\n/g, '\r\n')}done\r\n`]), 'cat key:\r\n[*****]done\r\n');
  assert.equal(run([key], [`cat key:\n${key}done\n`]), 'cat key:\n[*****]done\n');
  assert.equal(run([key], ['head -2: -----BEGIN KEY-----\r\nMIIEvQIBADANBgkqhkiG9w0B\r\n']), 'head -2: [*****]\r\n[*****]\r\n');
  // Lines shorter than the minimum are left alone.
  assert.equal(run(['line-one\nab\n'], ['ab line-one ab']), 'ab [*****] ab');
});

test('output that cannot be the start of a secret is written at once, not held back', () => {
  const m = new SecretMasker(['an-access-token-0123456789abcdefghij', 'hunter2']);
  // A live log shows this line while the task waits: nothing of it can begin a secret.
  assert.equal(Buffer.concat(m.push(Buffer.from('first line\r\n'))).toString(), 'first line\r\n');
  // Only the tail that may begin one waits for the next chunk.
  assert.equal(Buffer.concat(m.push(Buffer.from('prompt> an-acc'))).toString(), 'prompt> ');
  // A whole secret is decided once the longest secret (here its base64 form) would fit after
  // its start; until then it waits too, as it may be the start of a longer one.
  const rest = [m.push(Buffer.from('ess-token-0123456789abcdefghij ok\n')), m.push(Buffer.from(`${'-'.repeat(60)}\n`))];
  assert.equal(Buffer.concat(rest.flat()).toString(), `[*****] ok\n${'-'.repeat(60)}\n`);
  assert.equal(Buffer.concat(m.push(Buffer.from('hunter2'))).toString(), '');
  assert.equal(Buffer.concat(m.flush()).toString(), '[*****]');
});

test('every split point still masks when secrets overlap each other and the output', () => {
  const secrets = ['aab-aab-aac', 'aab-aa', 'b-aab-'];
  const text = 'aab-aab-aab-aac aab-aax b-aab-aac';
  const whole = run(secrets, [text]);
  for (let i = 0; i <= text.length; i++) {
    for (let j = i; j <= text.length; j++) {
      assert.equal(run(secrets, [text.slice(0, i), text.slice(i, j), text.slice(j)]), whole, `split at ${i},${j}`);
    }
  }
  for (let i = 0; i <= text.length; i++) assert.equal(run(secrets, [...text.slice(0, i)].concat(text.slice(i))), whole, `characters up to ${i}`);
});
