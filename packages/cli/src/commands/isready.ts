/**
 * `walship isready --node HOST:PORT` (pg_isready): asks the node's plain-HTTP `GET /healthz`
 * (served on the node port, DESIGN.md section 6) whether it accepts connections. Prints
 * `HOST:PORT - accepting connections` (exit 0), `- rejecting connections` (503: starting up,
 * shutting down; exit 1) or `- no response` (exit 3). Any other HTTP answer means a server is
 * there and accepting, as pg_isready counts any answer that is not a refusal.
 */
import { request } from 'node:http';
import { ExitCode } from '../cli-error.js';
import type { CliIo } from '../io.js';
import { formatNodeAddress, resolveNodes, type NodeAddress } from '../options.js';

export interface IsReadyOptions {
  node?: NodeAddress[];
  timeout?: number;
  quiet?: boolean;
}

/** pg_isready's default connect timeout. */
const DEFAULT_TIMEOUT_MS = 3000;

/** A /healthz body is a short status line; more than this is not read. */
const BODY_BYTES_MAX = 4096;

type Readiness = { state: 'accepting' | 'rejecting'; reason: string } | { state: 'no response'; reason: string };

const STATE_TEXT = { accepting: 'accepting connections', rejecting: 'rejecting connections', 'no response': 'no response' } as const;

export function probeHealth(node: NodeAddress, timeoutMs: number): Promise<Readiness> {
  return new Promise((resolve) => {
    const req = request({ host: node.host, port: node.port, path: '/healthz', method: 'GET', timeout: timeoutMs }, (response) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        if (bytes < BODY_BYTES_MAX) chunks.push(chunk);
        bytes += chunk.length;
      });
      response.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8').slice(0, BODY_BYTES_MAX).trim();
        resolve({ state: response.statusCode === 503 ? 'rejecting' : 'accepting', reason: body });
      });
      response.on('error', (error) => resolve({ state: 'no response', reason: error.message }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (error) => resolve({ state: 'no response', reason: error.message }));
    req.end();
  });
}

export async function run(options: IsReadyOptions, io: CliIo): Promise<number> {
  const nodes = resolveNodes(options.node, io.env);
  let worst: number = ExitCode.ok;
  for (const node of nodes) {
    const readiness = await probeHealth(node, options.timeout ?? DEFAULT_TIMEOUT_MS);
    if (options.quiet !== true) {
      const why = readiness.state === 'accepting' || readiness.reason === '' ? '' : ` (${readiness.reason})`;
      io.stdout.write(`${formatNodeAddress(node)} - ${STATE_TEXT[readiness.state]}${why}\n`);
    }
    const code = readiness.state === 'accepting' ? ExitCode.ok : readiness.state === 'rejecting' ? ExitCode.failed : ExitCode.unreachable;
    worst = Math.max(worst, code);
  }
  return worst;
}
