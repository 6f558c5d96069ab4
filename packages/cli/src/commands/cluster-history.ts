/**
 * `walship cluster history -f FILE [--json]`: the cluster's events (creation, switchovers,
 * failovers with their decisions, rejoins, reinits), oldest first, from DATA_ROOT/history.jsonl.
 * --json prints `{"events": [...]}` with each failover decision in full (candidates, positions,
 * thresholds, reasons).
 */
import { ExitCode } from '../cli-error.js';
import { loadConfig, type ClusterFileOptions } from '../cluster-options.js';
import type { CliIo } from '../io.js';
import { formatTable, printJson } from '../output.js';

export async function run(options: ClusterFileOptions, io: CliIo): Promise<number> {
  const config = await loadConfig(options);
  const { readHistory } = await import('@walship/cluster');
  const { events, unreadableLines } = readHistory(config.dataRoot);
  if (unreadableLines > 0) io.stderr.write(`walship: warning: ${unreadableLines} line(s) of the history could not be read and were skipped\n`);
  if (options.json === true) {
    printJson(io.stdout, { cluster: config.name, events });
    return ExitCode.ok;
  }
  if (events.length === 0) {
    io.stdout.write(`cluster ${config.name} has no history yet\n`);
    return ExitCode.ok;
  }
  io.stdout.write(
    formatTable(
      ['time', 'event', 'member', 'from', 'TL', 'LSN', 'ms', 'what happened'],
      events.map((event) => [event.at, event.event, event.member, event.from ?? '', String(event.timeline), event.lsn ?? '', String(event.durationMs), event.summary]),
    ),
  );
  for (const event of events) {
    if (event.decision === null) continue;
    io.stdout.write(`\n${event.at} ${event.event} to ${event.member}: candidates\n`);
    io.stdout.write(
      formatTable(
        ['candidate', 'eligible', 'TL', 'LSN', 'lag bytes', 'sync', 'why not'],
        event.decision.candidates.map((candidate) => [
          candidate.name, candidate.eligible ? 'yes' : 'no', String(candidate.timeline ?? ''), candidate.lsn ?? '', String(candidate.lagBytes ?? ''),
          candidate.syncState ?? (candidate.synchronousEligible ? '' : 'not synchronous'),
          candidate.reasons.map((reason) => `${reason.message}${reason.waived ? ' (waived)' : ''}`).join('; '),
        ]),
      ),
    );
  }
  return ExitCode.ok;
}
