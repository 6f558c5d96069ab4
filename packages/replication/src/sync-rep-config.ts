/**
 * synchronous_standby_names: PostgreSQL's grammar (syncrep_scanner.l, syncrep_gram.y) and its
 * check hook (syncrep.c's check_synchronous_standby_names), so that a value a PostgreSQL operator
 * writes means the same here, and a bad one is refused with the same words.
 *
 *     standby_config := standby_list                        FIRST 1, the 9.1–9.5 form
 *                     | NUM '(' standby_list ')'            FIRST NUM, the 9.6 form
 *                     | FIRST NUM '(' standby_list ')'      priority: the NUM first connected ones
 *                     | ANY NUM '(' standby_list ')'        quorum: any NUM of the listed ones
 *     standby_list   := standby_name (',' standby_name)*
 *     standby_name   := NAME | NUM
 *
 * Tokens, as the scanner makes them: blanks are skipped; `ANY` and `FIRST` are keywords in any
 * case (so a standby called "any" or "first" must be quoted); an identifier is a letter, `_` or a
 * non-ASCII character followed by those, digits and `$`; a run of digits is a NUM (and can be a
 * name: `1, 2` lists standbys "1" and "2"); `*` is a NAME; `"..."` is a NAME with `""` for a quote
 * inside. Names keep the case they are written in — the scanner does not fold them — and are
 * matched against application_name case-insensitively later (standbyPriority in sync-rep.ts).
 *
 * Errors are PostgreSQL's. A syntax error names the token where the value stopped making sense,
 * as flex's yytext shows it: the whole word or number, the closing `"` of a quoted name, nothing
 * at the end of input. Only the first error is reported. A count of zero is refused with
 * PostgreSQL's own primary message. The empty string (and only it) means asynchronous replication:
 * a value of blanks is a syntax error, as in PostgreSQL.
 *
 * Pure: a string in, a frozen SyncRepConfig (or null) out, or a thrown SyncRepConfigError.
 */
import { ErrorCode, WalshipError } from '@walship/engine/errors';
import { SYNC_REP_NUM_SYNC_MAX } from './constants.js';

/**
 * How the synchronous standbys are chosen (SYNC_REP_PRIORITY, SYNC_REP_QUORUM): `priority` for
 * FIRST and the keyword-less forms, `quorum` for ANY.
 */
export type SyncRepMethod = 'priority' | 'quorum';

/** A parsed synchronous_standby_names (PostgreSQL's SyncRepConfigData). */
export interface SyncRepConfig {
  readonly method: SyncRepMethod;
  /** How many standbys must confirm a commit (num_sync); at least 1. */
  readonly numSync: number;
  /** The names as written (quotes removed, case kept), in order; `*` matches any standby. */
  readonly memberNames: readonly string[];
}

const PARAMETER = 'synchronous_standby_names';

const HINT =
  "Use FIRST n (name, ...), ANY n (name, ...) or a list of names; * matches any standby, and '' turns synchronous replication off.";

/** Why a value was refused; the settings layer and tests branch on this, not on the text. */
export type SyncRepConfigErrorReason = 'syntax' | 'num_sync';

/**
 * A refused synchronous_standby_names. `message`, `detail` and `hint` are what PostgreSQL's check
 * hook reports; `code` is `invalid_parameter_value` like every other bad setting.
 */
export class SyncRepConfigError extends WalshipError {
  readonly reason: SyncRepConfigErrorReason;
  /** The value that was refused, as given. */
  readonly value: string;

  constructor(reason: SyncRepConfigErrorReason, value: string, message: string, detail: string | undefined, hint: string) {
    super(ErrorCode.invalidParameter, message, { detail, hint });
    this.name = 'SyncRepConfigError';
    this.reason = reason;
    this.value = value;
  }
}

/**
 * Parses synchronous_standby_names (check_synchronous_standby_names). Returns null for the empty
 * string — synchronous replication off — and throws SyncRepConfigError for a value PostgreSQL
 * would refuse.
 */
export function parseSynchronousStandbyNames(text: string): SyncRepConfig | null {
  if (text === '') return null;
  const config = new SyncRepParser(text).parse();
  if (config.numSync <= 0) {
    throw new SyncRepConfigError(
      'num_sync',
      text,
      `number of synchronous standbys (${config.numSync}) must be greater than zero`,
      undefined,
      "Ask for at least 1, or set synchronous_standby_names to '' to turn synchronous replication off.",
    );
  }
  return config;
}

/**
 * The settings layer's form of the check (a `SettingCheck<string>`): null when the value is good,
 * otherwise the detail and hint to put under `invalid value for parameter ...`.
 */
export function checkSynchronousStandbyNames(value: string): { detail: string; hint?: string } | null {
  try {
    parseSynchronousStandbyNames(value);
    return null;
  } catch (error) {
    if (!(error instanceof SyncRepConfigError)) throw error;
    // The count error has no detail in PostgreSQL: its primary message says it all.
    return { detail: error.detail ?? error.message, hint: error.hint };
  }
}

/**
 * Writes a config back in the explicit form (`FIRST 2 (s1, "My Standby")`), quoting each name that
 * would not scan back to itself; parseSynchronousStandbyNames(formatSyncRepConfig(c)) equals c.
 * For logs and status, where the rule in force should read the same whichever form was written.
 */
export function formatSyncRepConfig(config: SyncRepConfig): string {
  const keyword = config.method === 'priority' ? 'FIRST' : 'ANY';
  return `${keyword} ${config.numSync} (${config.memberNames.map(quoteStandbyName).join(', ')})`;
}

/** One name as it must be written to read back as itself. */
export function quoteStandbyName(name: string): string {
  if (name === '*' || /^[0-9]+$/.test(name)) return name;
  if (isPlainIdentifier(name) && keywordOf(name) === null) return name;
  return `"${name.replaceAll('"', '""')}"`;
}

// ---------------------------------------------------------------------------------------------
// Scanner (syncrep_scanner.l)
// ---------------------------------------------------------------------------------------------

type TokenKind = 'NAME' | 'NUM' | 'ANY' | 'FIRST' | ',' | '(' | ')' | 'JUNK' | 'EOF';

interface Token {
  kind: TokenKind;
  /** The name or the digits; '' for the others. */
  value: string;
  /** What flex's yytext holds after the token's last match: what an error message quotes. */
  yytext: string;
}

/** The scanner's {space}: C's isspace() in the "C" locale. */
function isSpace(char: string): boolean {
  return char === ' ' || char === '\t' || char === '\n' || char === '\r' || char === '\f' || char === '\v';
}

function isDigit(char: string): boolean {
  return char >= '0' && char <= '9';
}

/**
 * {ident_start}: [A-Za-z\200-\377_]. The scanner works on bytes and every byte of a multibyte
 * UTF-8 character has its high bit set, so any non-ASCII character is an identifier character.
 */
function isIdentStart(char: string): boolean {
  return (char >= 'a' && char <= 'z') || (char >= 'A' && char <= 'Z') || char === '_' || char.charCodeAt(0) >= 0x80;
}

/** {ident_cont}: {ident_start} plus digits and `$`. */
function isIdentCont(char: string): boolean {
  return isIdentStart(char) || isDigit(char) || char === '$';
}

function isPlainIdentifier(text: string): boolean {
  if (text === '' || !isIdentStart(text[0]!)) return false;
  for (const char of text) if (!isIdentCont(char)) return false;
  return true;
}

/**
 * The keyword an identifier-shaped word is. Flex takes the longest match and, on a tie, the
 * earlier rule, so exactly `any` or `first` in any case is a keyword and `anyone` is a name.
 */
function keywordOf(word: string): 'ANY' | 'FIRST' | null {
  const lower = asciiLower(word);
  if (lower === 'any') return 'ANY';
  if (lower === 'first') return 'FIRST';
  return null;
}

/** Folds A–Z only, as the scanner's bracketed keyword patterns and pg_strcasecmp do. */
export function asciiLower(text: string): string {
  return text.replace(/[A-Z]/g, (char) => String.fromCharCode(char.charCodeAt(0) + 32));
}

/**
 * Produces tokens one at a time, as the parser asks for them, so that an error later in the text
 * (an unterminated quote) is not reported before an earlier syntax error: PostgreSQL reports
 * only the first one it meets.
 */
class SyncRepScanner {
  private pos = 0;
  /** The scanner's own error (yyerror from a scanner rule), kept for the parser to report. */
  scanError: string | null = null;

  constructor(private readonly text: string) {}

  next(): Token {
    const text = this.text;
    while (this.pos < text.length && isSpace(text[this.pos]!)) this.pos++;
    if (this.pos >= text.length) return { kind: 'EOF', value: '', yytext: '' };
    const start = this.pos;
    const char = text[start]!;

    if (char === '"') return this.quotedName();
    if (isIdentStart(char)) {
      while (this.pos < text.length && isIdentCont(text[this.pos]!)) this.pos++;
      const word = text.slice(start, this.pos);
      const keyword = keywordOf(word);
      return { kind: keyword ?? 'NAME', value: keyword === null ? word : '', yytext: word };
    }
    if (isDigit(char)) {
      while (this.pos < text.length && isDigit(text[this.pos]!)) this.pos++;
      const digits = text.slice(start, this.pos);
      return { kind: 'NUM', value: digits, yytext: digits };
    }
    this.pos++;
    if (char === '*') return { kind: 'NAME', value: '*', yytext: '*' };
    if (char === ',' || char === '(' || char === ')') return { kind: char, value: '', yytext: char };
    return { kind: 'JUNK', value: '', yytext: char };
  }

  /** The <xd> start condition: `""` is one quote, the next lone `"` ends the name. */
  private quotedName(): Token {
    const text = this.text;
    this.pos++;
    let name = '';
    for (;;) {
      const close = text.indexOf('"', this.pos);
      if (close < 0) {
        // <xd><<EOF>>: at end of input flex's yytext is empty.
        this.pos = text.length;
        this.scanError ??= 'unterminated quoted identifier at end of input';
        return { kind: 'JUNK', value: '', yytext: '' };
      }
      name += text.slice(this.pos, close);
      if (text[close + 1] === '"') {
        name += '"';
        this.pos = close + 2;
        continue;
      }
      this.pos = close + 1;
      return { kind: 'NAME', value: name, yytext: '"' };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Parser (syncrep_gram.y)
// ---------------------------------------------------------------------------------------------

/**
 * A recursive-descent reading of the grammar in the banner. Like bison's LALR parser it stops at
 * the first token that no valid value could continue with, and that token is the one the message
 * names.
 */
class SyncRepParser {
  private readonly scanner: SyncRepScanner;

  constructor(private readonly text: string) {
    this.scanner = new SyncRepScanner(text);
  }

  parse(): SyncRepConfig {
    const first = this.scanner.next();
    switch (first.kind) {
      case 'ANY':
      case 'FIRST': {
        const count = this.expect('NUM');
        this.expect('(');
        const names = this.standbyList(')');
        this.expect('EOF');
        return makeConfig(first.kind === 'ANY' ? 'quorum' : 'priority', this.numSync(count), names);
      }
      case 'NUM': {
        const next = this.scanner.next();
        if (next.kind === '(') {
          const names = this.standbyList(')');
          this.expect('EOF');
          return makeConfig('priority', this.numSync(first), names);
        }
        // Not a count after all: the first name of a plain list.
        return makeConfig('priority', 1, this.standbyListTail([first.value], next, 'EOF'));
      }
      case 'NAME':
        return makeConfig('priority', 1, this.standbyListTail([first.value], this.scanner.next(), 'EOF'));
      default:
        throw this.syntaxError(first);
    }
  }

  /** standby_list followed by `end` (consumed). */
  private standbyList(end: TokenKind): string[] {
    const name = this.scanner.next();
    if (name.kind !== 'NAME' && name.kind !== 'NUM') throw this.syntaxError(name);
    return this.standbyListTail([name.value], this.scanner.next(), end);
  }

  /** The rest of a list whose first names are read; `token` is the one after them. */
  private standbyListTail(names: string[], token: Token, end: TokenKind): string[] {
    let current = token;
    while (current.kind === ',') {
      const name = this.scanner.next();
      if (name.kind !== 'NAME' && name.kind !== 'NUM') throw this.syntaxError(name);
      names.push(name.value);
      current = this.scanner.next();
    }
    if (current.kind !== end) throw this.syntaxError(current);
    return names;
  }

  private expect(kind: TokenKind): Token {
    const token = this.scanner.next();
    if (token.kind !== kind) throw this.syntaxError(token);
    return token;
  }

  /**
   * create_syncrep_config's atoi(). A count beyond a C int is refused here, where PostgreSQL's
   * atoi would wrap it into some other number (see SYNC_REP_NUM_SYNC_MAX).
   */
  private numSync(token: Token): number {
    const value = Number(token.value);
    if (value > SYNC_REP_NUM_SYNC_MAX) {
      throw new SyncRepConfigError(
        'num_sync',
        this.text,
        invalidValueMessage(this.text),
        `number of synchronous standbys (${token.value}) is out of range`,
        `Ask for at most ${SYNC_REP_NUM_SYNC_MAX}.`,
      );
    }
    return value;
  }

  /** syncrep_yyerror: the scanner's own error if it had one, else a syntax error at the token. */
  private syntaxError(token: Token): SyncRepConfigError {
    const detail = this.scanner.scanError
      ?? (token.yytext === '' ? 'syntax error at end of input' : `syntax error at or near "${token.yytext}"`);
    return new SyncRepConfigError('syntax', this.text, invalidValueMessage(this.text), detail, HINT);
  }
}

function invalidValueMessage(text: string): string {
  return `invalid value for parameter "${PARAMETER}": "${text}"`;
}

function makeConfig(method: SyncRepMethod, numSync: number, memberNames: string[]): SyncRepConfig {
  return Object.freeze({ method, numSync, memberNames: Object.freeze(memberNames) });
}
