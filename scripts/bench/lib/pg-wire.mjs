// A minimal PostgreSQL client for the benchmark scripts: the frontend/backend protocol version 3,
// the simple query protocol only, trust authentication only (the benchmark's servers are made
// with `initdb -A trust` and listen on loopback and on a private socket directory). It exists so
// that the comparison's control queries, samplers and write loops run in this process, as
// walship's client does on the other side, instead of paying a psql start per query.
//
//   const session = await PgSession.connect({ path: '/tmp/x/.s.PGSQL.5432' });   // or { host, port }
//   const rows = await session.query('SELECT 1');   // [['1']]: each row an array of text or null
//   await session.close();
//
// One query at a time per session (the protocol has no multiplexing); an ErrorResponse rejects
// the query with a PgError carrying the SQLSTATE, and the session stays usable.
import * as net from 'node:net';

/** Version 3.0 of the protocol, as StartupMessage carries it. */
const PROTOCOL_VERSION = 196608;

/** A server message larger than this is a protocol error here (DataRows of this benchmark are small). */
const MESSAGE_BYTES_MAX = 64 * 1024 * 1024;

export class PgError extends Error {
  constructor(fields) {
    super(`${fields.S ?? 'ERROR'}: ${fields.M ?? 'unknown error'}${fields.D ? ` (${fields.D})` : ''}`);
    this.code = fields.C ?? null;
    this.fields = fields;
  }
}

function parseErrorFields(body) {
  const fields = {};
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const type = String.fromCharCode(body[at]);
    const end = body.indexOf(0, at + 1);
    fields[type] = body.toString('utf8', at + 1, end);
    at = end + 1;
  }
  return fields;
}

export class PgSession {
  /**
   * @param {{ path?: string, host?: string, port?: number, user?: string, database?: string,
   *   applicationName?: string, timeoutMs?: number, options?: string }} target
   */
  static connect(target) {
    const session = new PgSession();
    return session.open(target).then(() => session);
  }

  constructor() {
    this.socket = null;
    this.buffer = Buffer.alloc(0);
    this.waiter = null; // { resolve, reject, rows, error }
    this.closed = false;
    this.failure = null;
  }

  open({ path, host = '127.0.0.1', port = 5432, user = 'postgres', database = 'postgres', applicationName = 'walship-bench', timeoutMs = 10_000, options }) {
    return new Promise((resolve, reject) => {
      const socket = path === undefined ? net.connect({ host, port }) : net.connect({ path });
      this.socket = socket;
      socket.setNoDelay?.(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connecting to PostgreSQL at ${path ?? `${host}:${port}`} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        rows: [],
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (error) => { clearTimeout(timer); socket.destroy(); reject(error); },
      };
      socket.on('connect', () => {
        const pairs = ['user', user, 'database', database, 'application_name', applicationName];
        if (options !== undefined) pairs.push('options', options);
        const body = Buffer.from(`${pairs.join('\0')}\0\0`, 'utf8');
        const header = Buffer.alloc(8);
        header.writeInt32BE(8 + body.length, 0);
        header.writeInt32BE(PROTOCOL_VERSION, 4);
        socket.write(Buffer.concat([header, body]));
      });
      socket.on('data', (chunk) => this.receive(chunk));
      socket.on('error', (error) => this.fail(error));
      socket.on('close', () => this.fail(new Error('the PostgreSQL connection was closed')));
    });
  }

  fail(error) {
    this.closed = true;
    this.failure ??= error;
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.reject(error);
  }

  receive(chunk) {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 5) {
      const length = this.buffer.readInt32BE(1);
      if (length < 4 || length > MESSAGE_BYTES_MAX) {
        this.fail(new Error(`a PostgreSQL message of ${length} bytes: not a protocol this client speaks`));
        this.socket.destroy();
        return;
      }
      if (this.buffer.length < 1 + length) return;
      const type = String.fromCharCode(this.buffer[0]);
      const body = this.buffer.subarray(5, 1 + length);
      this.buffer = this.buffer.subarray(1 + length);
      this.handle(type, body);
    }
  }

  handle(type, body) {
    const waiter = this.waiter;
    switch (type) {
      case 'R': {
        const code = body.readInt32BE(0);
        if (code !== 0) {
          this.fail(new Error(`PostgreSQL asked for authentication method ${code}; this benchmark client speaks trust only (initdb -A trust)`));
          this.socket.destroy();
        }
        return;
      }
      case 'D': {
        const columns = body.readInt16BE(0);
        const row = [];
        let at = 2;
        for (let i = 0; i < columns; i++) {
          const length = body.readInt32BE(at);
          at += 4;
          if (length < 0) row.push(null);
          else {
            row.push(body.toString('utf8', at, at + length));
            at += length;
          }
        }
        waiter?.rows.push(row);
        return;
      }
      case 'E':
        if (waiter !== null) waiter.error ??= new PgError(parseErrorFields(body));
        // Before the first ReadyForQuery (a refused startup) the server closes the connection.
        if (waiter !== null && this.ready !== true) {
          this.waiter = null;
          waiter.reject(waiter.error);
        }
        return;
      case 'Z':
        this.ready = true;
        this.waiter = null;
        if (waiter === null) return;
        if (waiter.error !== undefined) waiter.reject(waiter.error);
        else waiter.resolve(waiter.rows);
        return;
      default:
        // S (ParameterStatus), K (BackendKeyData), T (RowDescription), C (CommandComplete),
        // I (EmptyQueryResponse), N (NoticeResponse), A (NotificationResponse): nothing to keep.
        return;
    }
  }

  /** Runs one SQL text (it may hold several statements); resolves with the rows of its results. */
  query(sql, { timeoutMs = 0 } = {}) {
    if (this.closed) return Promise.reject(this.failure ?? new Error('the PostgreSQL session is closed'));
    if (this.waiter !== null) return Promise.reject(new Error('a query is already running on this session'));
    return new Promise((resolve, reject) => {
      let timer = null;
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          this.socket.destroy();
          this.fail(new Error(`the query took more than ${timeoutMs} ms: ${sql.slice(0, 80)}`));
        }, timeoutMs);
      }
      this.waiter = {
        rows: [],
        resolve: (rows) => { if (timer) clearTimeout(timer); resolve(rows); },
        reject: (error) => { if (timer) clearTimeout(timer); reject(error); },
      };
      const text = Buffer.from(`${sql}\0`, 'utf8');
      const header = Buffer.alloc(5);
      header.write('Q', 0, 'latin1');
      header.writeInt32BE(4 + text.length, 1);
      this.socket.write(Buffer.concat([header, text]));
    });
  }

  /** The first column of the first row, or null. */
  async value(sql, options) {
    const rows = await this.query(sql, options);
    return rows[0]?.[0] ?? null;
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    const terminate = Buffer.from([0x58, 0, 0, 0, 4]);
    await new Promise((resolve) => {
      this.socket.once('close', resolve);
      this.socket.end(terminate);
      setTimeout(() => { this.socket.destroy(); resolve(); }, 1000).unref();
    });
  }
}
