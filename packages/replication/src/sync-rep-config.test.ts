import { WalshipError } from '@walship/engine/errors';
import { describe, expect, it } from 'vitest';
import { SYNC_REP_NUM_SYNC_MAX } from './constants.js';
import {
  checkSynchronousStandbyNames, formatSyncRepConfig, parseSynchronousStandbyNames, quoteStandbyName, SyncRepConfigError,
  type SyncRepConfig,
} from './sync-rep-config.js';

const first = (numSync: number, ...memberNames: string[]): SyncRepConfig => ({ method: 'priority', numSync, memberNames });
const any = (numSync: number, ...memberNames: string[]): SyncRepConfig => ({ method: 'quorum', numSync, memberNames });

function refusal(text: string): SyncRepConfigError {
  try {
    parseSynchronousStandbyNames(text);
  } catch (error) {
    expect(error).toBeInstanceOf(SyncRepConfigError);
    expect(error).toBeInstanceOf(WalshipError);
    return error as SyncRepConfigError;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`);
}

/** A seeded generator (mulberry32), so that a failing case can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('parseSynchronousStandbyNames: the forms of the grammar', () => {
  it('the empty string is asynchronous replication', () => {
    expect(parseSynchronousStandbyNames('')).toBeNull();
  });

  it('FIRST n (list) is priority-based, ANY n (list) quorum-based', () => {
    expect(parseSynchronousStandbyNames('FIRST 2 (s1, s2, s3)')).toEqual(first(2, 's1', 's2', 's3'));
    expect(parseSynchronousStandbyNames('ANY 2 (s1, s2, s3)')).toEqual(any(2, 's1', 's2', 's3'));
  });

  it('a bare list is FIRST 1 and n (list) is FIRST n, for compatibility with 9.1–9.6', () => {
    expect(parseSynchronousStandbyNames('s1, s2')).toEqual(first(1, 's1', 's2'));
    expect(parseSynchronousStandbyNames('s1')).toEqual(first(1, 's1'));
    expect(parseSynchronousStandbyNames('2 (s1, s2)')).toEqual(first(2, 's1', 's2'));
  });

  it('* is a name of its own, alone or in a list, bare or quoted', () => {
    expect(parseSynchronousStandbyNames('*')).toEqual(first(1, '*'));
    expect(parseSynchronousStandbyNames('ANY 1 (*)')).toEqual(any(1, '*'));
    expect(parseSynchronousStandbyNames('FIRST 1 (s1, *)')).toEqual(first(1, 's1', '*'));
    expect(parseSynchronousStandbyNames('"*"')).toEqual(first(1, '*'));
  });

  it('keywords in any case; names keep the case they are written in', () => {
    expect(parseSynchronousStandbyNames('first 1 (S1, s2)')).toEqual(first(1, 'S1', 's2'));
    expect(parseSynchronousStandbyNames('Any 1 (Alpha)')).toEqual(any(1, 'Alpha'));
    expect(parseSynchronousStandbyNames('fIrSt 3 (a,b,c)')).toEqual(first(3, 'a', 'b', 'c'));
  });

  it('quoted names may hold anything, with "" for a quote', () => {
    expect(parseSynchronousStandbyNames('FIRST 1 ("My Standby", s2)')).toEqual(first(1, 'My Standby', 's2'));
    expect(parseSynchronousStandbyNames('"a,b" , "(c)"')).toEqual(first(1, 'a,b', '(c)'));
    expect(parseSynchronousStandbyNames('"say ""hi"""')).toEqual(first(1, 'say "hi"'));
    expect(parseSynchronousStandbyNames('""')).toEqual(first(1, ''));
    expect(parseSynchronousStandbyNames('"line\nbreak"')).toEqual(first(1, 'line\nbreak'));
    // A quoted keyword is a name.
    expect(parseSynchronousStandbyNames('ANY 1 ("any", "FIRST")')).toEqual(any(1, 'any', 'FIRST'));
  });

  it('a word that only starts like a keyword is a name', () => {
    expect(parseSynchronousStandbyNames('anyone, firstly, any_1, first$')).toEqual(first(1, 'anyone', 'firstly', 'any_1', 'first$'));
  });

  it('numbers can be names, and a count is a number before "("', () => {
    expect(parseSynchronousStandbyNames('1')).toEqual(first(1, '1'));
    expect(parseSynchronousStandbyNames('1, 2')).toEqual(first(1, '1', '2'));
    expect(parseSynchronousStandbyNames('FIRST 1 (007, 2)')).toEqual(first(1, '007', '2'));
    expect(parseSynchronousStandbyNames('FIRST 01 (a)')).toEqual(first(1, 'a'));
  });

  it('identifiers: letters, _, non-ASCII characters, then digits and $ too', () => {
    expect(parseSynchronousStandbyNames('_s, s$1, Ärzte, 東京')).toEqual(first(1, '_s', 's$1', 'Ärzte', '東京'));
  });

  it('blanks of every kind are skipped, none are needed around punctuation', () => {
    expect(parseSynchronousStandbyNames(' \t\nFIRST\r\n2\f(\va ,\tb )\n')).toEqual(first(2, 'a', 'b'));
    expect(parseSynchronousStandbyNames('ANY 1(a,b)')).toEqual(any(1, 'a', 'b'));
  });

  it('a name listed twice is kept twice, as PostgreSQL keeps it', () => {
    expect(parseSynchronousStandbyNames('FIRST 2 (s1, s2, s1)')).toEqual(first(2, 's1', 's2', 's1'));
  });

  it('a count above the list length is accepted, as PostgreSQL accepts it', () => {
    expect(parseSynchronousStandbyNames('ANY 3 (s1, s2)')).toEqual(any(3, 's1', 's2'));
  });

  it('returns a frozen config', () => {
    const config = parseSynchronousStandbyNames('FIRST 1 (a)')!;
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.memberNames)).toBe(true);
  });
});

describe('parseSynchronousStandbyNames: errors, as PostgreSQL words them', () => {
  const syntaxErrors: Array<[string, string]> = [
    [' ', 'syntax error at end of input'],
    ['\t\n', 'syntax error at end of input'],
    ['FIRST', 'syntax error at end of input'],
    ['ANY 1', 'syntax error at end of input'],
    ['FIRST 1 (', 'syntax error at end of input'],
    ['FIRST 1 (a', 'syntax error at end of input'],
    ['FIRST 1 (a,', 'syntax error at end of input'],
    ['FIRST 1 ()', 'syntax error at or near ")"'],
    ['FIRST 1 (a,)', 'syntax error at or near ")"'],
    ['FIRST 1 (a) b', 'syntax error at or near "b"'],
    ['FIRST 1 (a) (b)', 'syntax error at or near "("'],
    ['FIRST a (b)', 'syntax error at or near "a"'],
    ['FIRST (a)', 'syntax error at or near "("'],
    ['FIRST 1 a', 'syntax error at or near "a"'],
    ['FIRST ANY 1 (a)', 'syntax error at or near "ANY"'],
    ['first 1 (any)', 'syntax error at or near "any"'],
    ['ANY 1 (s1, First)', 'syntax error at or near "First"'],
    ['any, b', 'syntax error at or near ","'],
    ['1 2 (a)', 'syntax error at or near "2"'],
    ['a b', 'syntax error at or near "b"'],
    ['a,,b', 'syntax error at or near ","'],
    [',a', 'syntax error at or near ","'],
    ['a,', 'syntax error at end of input'],
    ['(a)', 'syntax error at or near "("'],
    ['a)', 'syntax error at or near ")"'],
    ['a (b)', 'syntax error at or near "("'],
    ['a;b', 'syntax error at or near ";"'],
    ['$a', 'syntax error at or near "$"'],
    ['FIRST -1 (a)', 'syntax error at or near "-"'],
    ['FIRST 1.5 (a)', 'syntax error at or near "."'],
    ['1abc', 'syntax error at or near "abc"'],
    ["'s1'", `syntax error at or near "'"`],
    // flex's yytext after a quoted name is its closing quote, so that is what PostgreSQL names.
    ['FIRST 1 "a"', 'syntax error at or near """'],
    ['"a" "b"', 'syntax error at or near """'],
    ['"abc', 'unterminated quoted identifier at end of input'],
    ['FIRST 1 (a, "b)', 'unterminated quoted identifier at end of input'],
    ['"a""', 'unterminated quoted identifier at end of input'],
    ['FIRST 1 (a) "b', 'unterminated quoted identifier at end of input'],
    // Only the first error counts: the parser stops at "b" and never scans the open quote.
    ['a b "c', 'syntax error at or near "b"'],
  ];

  it.each(syntaxErrors)('%j: %s', (text, detail) => {
    const error = refusal(text);
    expect(error.reason).toBe('syntax');
    expect(error.code).toBe('invalid_parameter_value');
    expect(error.message).toBe(`invalid value for parameter "synchronous_standby_names": "${text}"`);
    expect(error.detail).toBe(detail);
    expect(error.hint).toMatch(/FIRST n/);
    expect(error.value).toBe(text);
  });

  it.each(['FIRST 0 (a)', 'ANY 0 (a, b)', '0 (a)', 'FIRST 000 (a)'])('%j: a count of zero', (text) => {
    const error = refusal(text);
    expect(error.reason).toBe('num_sync');
    expect(error.code).toBe('invalid_parameter_value');
    expect(error.message).toBe('number of synchronous standbys (0) must be greater than zero');
    expect(error.detail).toBeUndefined();
    expect(error.describe()).toBe(
      "ERROR:  number of synchronous standbys (0) must be greater than zero\nHINT:  Ask for at least 1, or set synchronous_standby_names to '' to turn synchronous replication off.",
    );
  });

  it('a bare 0 is a standby called "0", not a count', () => {
    expect(parseSynchronousStandbyNames('0')).toEqual(first(1, '0'));
  });

  it('a count beyond a C int is refused rather than wrapped', () => {
    expect(parseSynchronousStandbyNames(`FIRST ${SYNC_REP_NUM_SYNC_MAX} (a)`)).toEqual(first(SYNC_REP_NUM_SYNC_MAX, 'a'));
    const error = refusal('ANY 4294967297 (a)');
    expect(error.reason).toBe('num_sync');
    expect(error.message).toBe('invalid value for parameter "synchronous_standby_names": "ANY 4294967297 (a)"');
    expect(error.detail).toBe('number of synchronous standbys (4294967297) is out of range');
  });

  it('a syntax error after the list is found before the count is looked at', () => {
    expect(refusal('FIRST 0 (a) b').detail).toBe('syntax error at or near "b"');
  });
});

describe('checkSynchronousStandbyNames', () => {
  it('is null for a good value and the empty one', () => {
    expect(checkSynchronousStandbyNames('FIRST 1 (s1, s2)')).toBeNull();
    expect(checkSynchronousStandbyNames('')).toBeNull();
  });

  it('gives the detail and hint of a refusal', () => {
    expect(checkSynchronousStandbyNames('FIRST 1')).toEqual({ detail: 'syntax error at end of input', hint: expect.stringMatching(/ANY n/) });
    expect(checkSynchronousStandbyNames('ANY 0 (a)')).toEqual({
      detail: 'number of synchronous standbys (0) must be greater than zero',
      hint: expect.stringMatching(/at least 1/),
    });
  });
});

describe('formatSyncRepConfig', () => {
  it('writes the explicit form, quoting only what must be', () => {
    expect(formatSyncRepConfig(parseSynchronousStandbyNames('s1, s2')!)).toBe('FIRST 1 (s1, s2)');
    expect(formatSyncRepConfig(parseSynchronousStandbyNames('ANY 2 (*, "My Standby", "any", 07, S$1)')!))
      .toBe('ANY 2 (*, "My Standby", "any", 07, S$1)');
    expect(quoteStandbyName('say "hi"')).toBe('"say ""hi"""');
    expect(quoteStandbyName('')).toBe('""');
    expect(quoteStandbyName('First')).toBe('"First"');
    expect(quoteStandbyName('1a')).toBe('"1a"');
    expect(quoteStandbyName('東京')).toBe('東京');
  });

  it('reads back as the same config, for many random names', () => {
    const next = random(20_260_101);
    const alphabet = ['a', 'Z', '_', '$', '0', '7', ' ', '"', ',', '(', ')', '*', 'é', '東', '-', '\t', "'", 'any', 'FIRST'];
    for (let round = 0; round < 2_000; round++) {
      const names: string[] = [];
      const count = 1 + Math.floor(next() * 4);
      for (let i = 0; i < count; i++) {
        let name = '';
        const length = Math.floor(next() * 6);
        for (let j = 0; j < length; j++) name += alphabet[Math.floor(next() * alphabet.length)];
        names.push(name);
      }
      const config: SyncRepConfig = { method: next() < 0.5 ? 'priority' : 'quorum', numSync: 1 + Math.floor(next() * 5), memberNames: names };
      const text = formatSyncRepConfig(config);
      expect(parseSynchronousStandbyNames(text), text).toEqual(config);
    }
  });
});

describe('parseSynchronousStandbyNames on random input', () => {
  it('either parses to a config that formats back to itself or refuses with a SyncRepConfigError', () => {
    const next = random(7);
    const pieces = ['FIRST', 'ANY', 'first', ' ', ' ', '1', '2', '0', '(', ')', ',', ',', 's1', 'S2', '*', '"', '"x y"', '""', '$', '-', '\n'];
    let parsed = 0;
    let refused = 0;
    for (let round = 0; round < 5_000; round++) {
      let text = '';
      const length = 1 + Math.floor(next() * 9);
      for (let i = 0; i < length; i++) text += pieces[Math.floor(next() * pieces.length)];
      let config: SyncRepConfig | null;
      try {
        config = parseSynchronousStandbyNames(text);
      } catch (error) {
        expect(error, text).toBeInstanceOf(SyncRepConfigError);
        expect((error as SyncRepConfigError).detail ?? (error as SyncRepConfigError).message, text)
          .toMatch(/^(syntax error at (end of input|or near ".*")|unterminated quoted identifier at end of input|number of synchronous standbys .*)$/s);
        refused++;
        continue;
      }
      expect(config, text).not.toBeNull();
      expect(config!.numSync, text).toBeGreaterThan(0);
      expect(config!.memberNames.length, text).toBeGreaterThan(0);
      expect(parseSynchronousStandbyNames(formatSyncRepConfig(config!)), text).toEqual(config);
      parsed++;
    }
    // Both outcomes must be exercised, or the test proves little.
    expect(parsed).toBeGreaterThan(200);
    expect(refused).toBeGreaterThan(200);
  });
});
