import { describe, expect, it } from 'vitest';
import {
  buildScramVerifier,
  formatScramVerifier,
  parseScramVerifier,
  saslPrep,
  ScramClient,
  ScramError,
  ScramServerExchange,
  scramMockSalt,
  scramVerifyPassword,
} from './scram.js';

// RFC 7677 section 3: user "user", password "pencil".
const RFC = {
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
};

function rfcVerifier() {
  return buildScramVerifier('pencil', { salt: RFC.salt, iterations: 4096 });
}

describe('SCRAM-SHA-256 against the RFC 7677 test vector', () => {
  it('the client writes the RFC messages and accepts the server signature', () => {
    const client = new ScramClient({ password: 'pencil', username: 'user', clientNonce: RFC.clientNonce });
    expect(client.clientFirstMessage()).toBe(RFC.clientFirst);
    expect(client.handleServerFirst(RFC.serverFirst)).toBe(RFC.clientFinal);
    expect(client.verified).toBe(false);
    client.verifyServerFinal(RFC.serverFinal);
    expect(client.verified).toBe(true);
  });

  it('handleServerMessage answers saslContinue with the client-final message and verifies saslFinal', () => {
    const client = new ScramClient({ password: 'pencil', username: 'user', clientNonce: RFC.clientNonce });
    client.clientFirstMessage();
    expect(client.handleServerMessage({ type: 'saslContinue', data: RFC.serverFirst })).toBe(RFC.clientFinal);
    expect(client.handleServerMessage({ type: 'saslFinal', data: RFC.serverFinal })).toBeNull();
    expect(client.verified).toBe(true);
    expect(() => client.handleServerMessage({ type: 'saslFinal', data: RFC.serverFinal })).toThrow('invalid SCRAM exchange state');
  });

  it('the server answers the RFC messages and accepts the proof', () => {
    const server = new ScramServerExchange({ verifier: rfcVerifier(), serverNonce: RFC.serverNonce });
    expect(server.handleClientFirst(RFC.clientFirst)).toBe(RFC.serverFirst);
    expect(server.handleClientFinal(RFC.clientFinal)).toEqual({ ok: true, serverFinal: RFC.serverFinal });
  });

  it('a client given a wrong server signature refuses it', () => {
    const client = new ScramClient({ password: 'pencil', username: 'user', clientNonce: RFC.clientNonce });
    client.clientFirstMessage();
    client.handleServerFirst(RFC.serverFirst);
    const wrong = `v=${Buffer.alloc(32, 7).toString('base64')}`;
    expect(() => client.verifyServerFinal(wrong)).toThrow('incorrect server signature');
    expect(client.verified).toBe(false);
    const other = new ScramClient({ password: 'pencil', clientNonce: RFC.clientNonce });
    other.clientFirstMessage();
    other.handleServerFirst(RFC.serverFirst);
    expect(() => other.verifyServerFinal('e=invalid-proof')).toThrow('error received from server in SCRAM exchange: invalid-proof');
  });

  it('a server refuses a wrong password, and a doomed exchange (unknown user) even with the right proof', () => {
    const server = new ScramServerExchange({ verifier: rfcVerifier(), serverNonce: RFC.serverNonce });
    const client = new ScramClient({ password: 'pencil2', username: 'user', clientNonce: RFC.clientNonce });
    server.handleClientFirst(client.clientFirstMessage());
    expect(server.handleClientFinal(client.handleServerFirst(RFC.serverFirst))).toEqual({ ok: false });
    const mock = scramMockSalt('nobody', Buffer.alloc(32, 1));
    expect(scramMockSalt('nobody', Buffer.alloc(32, 1))).toEqual(mock);
    expect(scramMockSalt('somebody', Buffer.alloc(32, 1))).not.toEqual(mock);
    const doomed = new ScramServerExchange({ verifier: null, mockSalt: mock });
    const first = doomed.handleClientFirst('n,,n=,r=abc');
    expect(first).toContain(`s=${mock.toString('base64')},i=4096`);
    const guess = new ScramClient({ password: 'x', clientNonce: 'abc' });
    guess.clientFirstMessage();
    expect(doomed.handleClientFinal(guess.handleServerFirst(first))).toEqual({ ok: false });
  });

  it('a client and a server with random nonces agree', () => {
    const verifier = buildScramVerifier('s3cret-ü');
    const client = new ScramClient({ password: 's3cret-ü' });
    const server = new ScramServerExchange({ verifier });
    const result = server.handleClientFinal(client.handleServerFirst(server.handleClientFirst(client.clientFirstMessage())));
    expect(result.ok).toBe(true);
    if (result.ok) client.verifyServerFinal(result.serverFinal);
    expect(client.verified).toBe(true);
  });
});

describe('SCRAM messages that are refused', () => {
  const cases: Array<[string, string]> = [
    ['', 'malformed SCRAM message'],
    ['x,,n=,r=abc', 'malformed SCRAM message'],
    ['p=tls-server-end-point,,n=,r=abc', 'channel binding is not supported'],
    ['n,a=admin,n=,r=abc', 'client uses authorization identity, but it is not supported'],
    ['n,,r=abc', 'malformed SCRAM message'],
    ['n,,n=,m=ext,r=abc', 'client requires an unsupported SCRAM extension'],
    ['n,,n=,r=a b', 'malformed SCRAM message'],
    ['n,,n=,r=', 'malformed SCRAM message'],
    [`n,,n=,r=${'a'.repeat(2000)}`, 'malformed SCRAM message'],
  ];
  it.each(cases)('client-first %j: %s', (message, error) => {
    const server = new ScramServerExchange({ verifier: rfcVerifier() });
    expect(() => server.handleClientFirst(message)).toThrow(error);
  });

  it('client-final with a wrong binding, a wrong nonce or a bad proof', () => {
    const start = () => {
      const server = new ScramServerExchange({ verifier: rfcVerifier(), serverNonce: RFC.serverNonce });
      server.handleClientFirst(RFC.clientFirst);
      return server;
    };
    expect(() => start().handleClientFinal(RFC.clientFinal.replace('c=biws', 'c=eSws'))).toThrow('SCRAM channel binding check failed');
    expect(() => start().handleClientFinal(RFC.clientFinal.replace('hNlF', 'hNlG'))).toThrow('invalid SCRAM response');
    expect(() => start().handleClientFinal(RFC.clientFinal.replace(/p=.*$/, 'p=AAAA'))).toThrow('malformed SCRAM message');
    expect(() => start().handleClientFinal(RFC.clientFinal.replace(/,p=.*$/, ''))).toThrow('malformed SCRAM message');
    const server = start();
    server.handleClientFinal(RFC.clientFinal);
    expect(() => server.handleClientFinal(RFC.clientFinal)).toThrow(ScramError);
  });

  it('server-first with a nonce that does not extend the client\'s, a bad salt or iteration count', () => {
    const attempt = (serverFirst: string) => {
      const client = new ScramClient({ password: 'pencil', clientNonce: RFC.clientNonce });
      client.clientFirstMessage();
      return () => client.handleServerFirst(serverFirst);
    };
    expect(attempt('r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096')).toThrow('invalid SCRAM response');
    expect(attempt(`r=${RFC.clientNonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`)).toThrow('invalid SCRAM response');
    expect(attempt(`r=${RFC.clientNonce}x,s=!!,i=4096`)).toThrow('malformed SCRAM message');
    expect(attempt(`r=${RFC.clientNonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`)).toThrow('malformed SCRAM message');
    expect(attempt(`r=${RFC.clientNonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999`)).toThrow('malformed SCRAM message');
    expect(attempt(`m=x,r=${RFC.clientNonce}x`)).toThrow('server requires an unsupported SCRAM extension');
  });
});

describe('SCRAM verifiers', () => {
  it('format and parse PostgreSQL\'s text form, and check a password', () => {
    const verifier = rfcVerifier();
    const text = formatScramVerifier(verifier);
    expect(text).toMatch(/^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
    expect(parseScramVerifier(text)).toEqual(verifier);
    expect(scramVerifyPassword('pencil', verifier)).toBe(true);
    expect(scramVerifyPassword('pencil ', verifier)).toBe(false);
  });

  it('accepts a verifier made by PostgreSQL, and checks the password against it', () => {
    // PostgreSQL 15.18 (the one on this machine): CREATE ROLE u PASSWORD 'pencil' with
    // password_encryption = 'scram-sha-256', then SELECT rolpassword FROM pg_authid.
    const fromPostgres = 'SCRAM-SHA-256$4096:mne9mn+jOiwyJS6rRXx68A==$LmxFoOWwnZbg4Wt1UDR3xKSbMKuIOKwHMQtXB0Zd2xw=:e5WXJCwJyjWOxKfV5h3aB12U1G0hSwMWNB2BsPzsBkY=';
    const verifier = parseScramVerifier(fromPostgres);
    expect(verifier?.iterations).toBe(4096);
    expect(formatScramVerifier(verifier!)).toBe(fromPostgres);
    expect(scramVerifyPassword('pencil', verifier!)).toBe(true);
    expect(scramVerifyPassword('pencil2', verifier!)).toBe(false);
    expect(formatScramVerifier(buildScramVerifier('pencil', { salt: verifier!.salt }))).toBe(fromPostgres);
  });

  it('refuses what is not a verifier', () => {
    const good = formatScramVerifier(rfcVerifier());
    for (const bad of ['', 'pencil', 'md5abcdef', good.replace('4096', '0'), good.replace('SCRAM-SHA-256', 'SCRAM-SHA-1'), good.slice(0, -4), `${good}:x`, good.replace('$4096:', '$4096:*')]) {
      expect(parseScramVerifier(bad)).toBeNull();
    }
  });

  it('SASLprep: ASCII as it is, non-ASCII spaces mapped and NFKC applied, prohibited characters left raw', () => {
    expect(saslPrep('pencil').toString()).toBe('pencil');
    expect(saslPrep('a\u00A0b').toString()).toBe('a b');
    expect(saslPrep('I\u00ADX').toString()).toBe('IX');
    expect(saslPrep('\u2168').toString()).toBe('IX');
    expect(saslPrep('\u00AA').toString()).toBe('a');
    expect(saslPrep('ü\u0007')).toEqual(Buffer.from('ü\u0007', 'utf8'));
  });
});

describe('SCRAM parsing of hostile input', () => {
  /** A deterministic generator, so that a failure can be replayed. */
  function random(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
      state = (state * 1664525 + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
  }
  const alphabet = 'nypcrsiv=,abcAB+/0123456789-_$%\u00e9 ';
  function mutate(text: string, next: () => number): string {
    const chars = [...text];
    const edits = 1 + Math.floor(next() * 4);
    for (let i = 0; i < edits; i++) {
      const at = Math.floor(next() * (chars.length + 1));
      const kind = next();
      const char = alphabet[Math.floor(next() * alphabet.length)]!;
      if (kind < 0.33) chars.splice(at, 1);
      else if (kind < 0.66) chars.splice(at, 0, char);
      else chars[at] = char;
    }
    return chars.join('');
  }
  const onlyScramErrors = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(ScramError);
    }
  };

  it('the server throws only ScramErrors for mutated client messages', () => {
    const next = random(42);
    const verifier = rfcVerifier();
    for (let i = 0; i < 2_000; i++) {
      const server = new ScramServerExchange({ verifier, serverNonce: RFC.serverNonce });
      onlyScramErrors(() => server.handleClientFirst(mutate(RFC.clientFirst, next)));
      const again = new ScramServerExchange({ verifier, serverNonce: RFC.serverNonce });
      again.handleClientFirst(RFC.clientFirst);
      const final = mutate(RFC.clientFinal, next);
      let result: ReturnType<ScramServerExchange['handleClientFinal']> | null = null;
      onlyScramErrors(() => {
        result = again.handleClientFinal(final);
      });
      // A changed client-final-message never passes (a mutation may give the same text back).
      if (final !== RFC.clientFinal) expect(result === null || !(result as { ok: boolean }).ok, final).toBe(true);
    }
  });

  it('the client throws only ScramErrors for mutated server messages, and never accepts a mutated signature', () => {
    const next = random(7);
    for (let i = 0; i < 100; i++) {
      const client = new ScramClient({ password: 'pencil', username: 'user', clientNonce: RFC.clientNonce });
      client.clientFirstMessage();
      onlyScramErrors(() => client.handleServerFirst(mutate(RFC.serverFirst, next).replace(/i=\d+/, 'i=16')));
      const verifier = new ScramClient({ password: 'pencil', username: 'user', clientNonce: RFC.clientNonce });
      verifier.clientFirstMessage();
      verifier.handleServerFirst(RFC.serverFirst);
      const final = mutate(RFC.serverFinal, next);
      onlyScramErrors(() => verifier.verifyServerFinal(final));
      if (final !== RFC.serverFinal) expect(verifier.verified).toBe(false);
    }
  });
});
