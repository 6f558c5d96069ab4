/**
 * The walship program: its commands and options (DESIGN.md section 10), declared here with
 * commander, each command's module loaded only when that command runs, so that `walship --help`
 * and the quick commands start fast. Exit statuses: 0 ok, 1 failed check or missing key, 2 usage
 * error, 3 node unreachable.
 */
import { Command, CommanderError, Option } from 'commander';
import { CliError, ExitCode, formatErrorText } from './cli-error.js';
import { processIo, type CliIo } from './io.js';
import {
  collectAssignment,
  DEFAULT_NODE,
  parseByteSize,
  parseLsnArgument,
  parseNodeList,
  parsePort,
  parseNodeAddress,
  parsePositiveInteger,
  parseSecondsOrZeroToMs,
  parseSecondsToMs,
  parseStopMode,
  parseSyncCommitLevel,
  parseWaitLsnMode,
  TARGET_SESSION_ATTRS,
} from './options.js';
import { VERSION } from './version.js';
import type { ShowOptions } from './commands/show.js';
import type { ClusterFileOptions } from './cluster-options.js';

/** A repeatable option's values, in order. */
function collectValue(text: string, previous: string[] = []): string[] {
  return [...previous, text];
}

/** A command module: runs with its parsed options and returns the exit status. */
type CommandRunner<O> = (options: O, io: CliIo) => Promise<number>;

const NODE_HELP = `node address HOST:PORT, or a list a:1,b:2 (default: $WALSHIP_NODE or ${DEFAULT_NODE})`;
const TIMEOUT_HELP = 'give up after S seconds (default: wait as long as the operation does)';

const HELP_FOOTER = `
Environment:
  WALSHIP_NODE       default for --node (HOST:PORT)
  WALSHIP_PASSWORD   password for connections (never given as a flag)
  WALSHIP_PASSFILE   password file, lines of host:port:user:password
  WALSHIP_USER       user name for connections (or --user)
  WALSHIP_SSLMODE    TLS as libpq's sslmode: disable, allow, prefer (default), require, verify-ca, verify-full
  WALSHIP_SSLROOTCERT  CA certificates (PEM) that verify-ca and verify-full trust, or "system"
  WALSHIP_SSLCERT, WALSHIP_SSLKEY  a client certificate and its key (PEM) to present

Exit status: 0 success, 1 failed check or missing key, 2 usage error, 3 node unreachable.
`;

export function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  let commandName = '';
  const program = new Command('walship');
  program
    .description('primary/standby replicated key-value nodes, built on PostgreSQL\'s architecture')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => {
        const message = text.replace(/^error: /, '').trimEnd();
        const help = commandName === '' ? 'walship --help' : `walship ${commandName} --help`;
        write(formatErrorText(message, undefined, `Try "${help}" for more information.`));
      },
    })
    .showSuggestionAfterError(true)
    .addHelpText('after', HELP_FOOTER)
    .option('--user <name>', 'user name for connections (default: $WALSHIP_USER, else walship)')
    .hook('preSubcommand', (_program, subcommand) => {
      commandName = subcommand.name();
    })
    .hook('preAction', () => {
      // --user is WALSHIP_USER for this run: every command, and the node commands a cluster
      // command runs, read the user from there (credentials.ts).
      const user = program.opts<{ user?: string }>().user;
      if (user !== undefined) io.env.WALSHIP_USER = user;
    });

  /** Declares a command whose module is imported only when it runs. */
  function lazy<O>(load: () => Promise<{ run: CommandRunner<O> }>, toOptions: (args: unknown[]) => O) {
    return async (...args: unknown[]) => {
      const module = await load();
      setExitCode(await module.run(toOptions(args), io));
    };
  }

  /** The commander options object of an action: the one before the Command at the end. */
  const optionsOf = <T>(args: unknown[]): T => args[args.length - 2] as T;

  const dataDirOption = () => new Option('-D, --data-dir <dir>', 'data directory').makeOptionMandatory();
  const nodeOption = () => new Option('--node <host:port>', NODE_HELP).argParser(parseNodeList);
  const timeoutOption = () => new Option('--timeout <s>', TIMEOUT_HELP).argParser(parseSecondsToMs);
  const tableOption = () => new Option('--table <name>', 'table (default: the default table)');
  // A data command's -f CLUSTER.yaml: every member of the cluster, with the cluster commands' overrides.
  const clusterFileOption = (what: string) => new Option('-f, --file <file>', `cluster config: ${what}`);
  const basePortOption = () => new Option('--base-port <n>', "with -f: every member's port is N plus its port_offset").argParser(parsePort);
  const dataRootOption = () => new Option('--data-root <dir>', 'with -f: the cluster\'s data root (overrides data_root)');
  const targetSessionAttrsOption = () =>
    new Option('--target-session-attrs <attrs>', 'which member of a list to read from, as libpq\'s (default: any with --node, read-write with -f)')
      .choices(TARGET_SESSION_ATTRS);
  const syncCommitOption = () =>
    new Option('--sync-commit <level>', 'synchronous_commit for this write: off, local, remote_write, on, remote_apply').argParser(
      parseSyncCommitLevel,
    );

  // Node --------------------------------------------------------------------------------------

  program
    .command('init')
    .summary('create a new data directory (initdb)')
    .description('Create a new data directory: control file, first WAL segment, catalog and walship.conf.')
    .addOption(dataDirOption())
    .addOption(new Option('--port <n>', 'port the node will listen on (default: 5433)').argParser(parsePort))
    .addOption(new Option('--set <name=value>', 'a setting for walship.conf; repeat for more').argParser(collectAssignment).default([]))
    .addOption(
      new Option('--auth <method>', 'auth_method: scram-sha-256 (asks for the superuser\'s password: WALSHIP_PASSWORD or a prompt) or trust (the default)').choices([
        'scram-sha-256',
        'trust',
      ]),
    )
    .addOption(new Option('-U, --username <name>', 'the superuser\'s name with --auth scram-sha-256 (default: walship)'))
    .option('--tls', 'make a CA and a certificate for the node (server.crt, server.key, root.crt) and turn ssl on')
    .addOption(new Option('--tls-host <name>', 'another host name or address for the certificate (with localhost, 127.0.0.1 and ::1); repeat for more').argParser(collectValue).default([]))
    .addOption(new Option('--tls-ca <dir>', 'sign with the CA in DIR (root.crt, root.key), made there when absent; without it the CA\'s key is not kept'))
    .option('--encrypt', 'encrypt WAL and data pages at rest (needs --key-file or --key-command)')
    .option('--key-file <file>', 'with --encrypt: file holding the 32-byte cluster key, as hex or base64 (cluster_key_file)')
    .option('--key-command <command>', 'with --encrypt: command printing the cluster key on stdout (cluster_key_command)')
    .action(
      lazy(
        () => import('./commands/init.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('rotate-key')
    .summary('wrap the data encryption keys under a new cluster key (pg_alterckey)')
    .description('Re-wrap the data keys of an encrypted data directory with a new cluster key and point walship.conf at it; no data is rewritten. The node may be stopped or running (a running node uses the new key from its next start).')
    .addOption(dataDirOption())
    .option('--new-key-file <file>', 'file holding the new 32-byte cluster key, as hex or base64')
    .option('--new-key-command <command>', 'command printing the new cluster key on stdout')
    .option('--key-file <file>', 'the current cluster key (default: cluster_key_file or cluster_key_command in walship.conf)')
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/rotate-key.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('start')
    .summary('start a node (pg_ctl start)')
    .description('Start the node of a data directory and wait until it accepts connections.')
    .addOption(dataDirOption())
    .option('--foreground', 'run the server in this terminal instead of in the background')
    .addOption(new Option('--timeout <s>', 'seconds to wait for the node to accept connections (default: 60)').argParser(parseSecondsToMs))
    .action(
      lazy(
        () => import('./commands/start.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('basebackup')
    .summary('copy a running node into a new data directory (pg_basebackup)')
    .description('Take a consistent copy of a running node; with --standby, make it a streaming standby of that node.')
    .addOption(new Option('--from <host:port>', 'the node to copy').argParser(parseNodeAddress).makeOptionMandatory())
    .addOption(dataDirOption())
    .option('--standby', 'write standby.signal and primary_conninfo (pg_basebackup -R)')
    .addOption(new Option('--slot <name>', 'replication slot for the standby (created when absent)'))
    .addOption(new Option('--port <n>', "the new node's port").argParser(parsePort))
    .addOption(new Option('--set <name=value>', "a setting of the new node's walship.conf; repeat for more").argParser(collectAssignment).default([]))
    .option('--progress', 'draw progress on stderr even when it is not a terminal')
    .option('--quiet', 'no progress')
    .option('--key-file <file>', "an encrypted source's cluster key as the copy finds it (default: the source's cluster_key_file setting)")
    .option('--key-command <command>', "an encrypted source's cluster key command for the copy")
    .option('--json', 'print one JSON document')
    .addOption(new Option('--timeout <s>', 'seconds to wait for the connection (default: 30)').argParser(parseSecondsToMs))
    .action(
      lazy(
        () => import('./commands/basebackup.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('promote')
    .summary('promote a standby to primary (pg_ctl promote)')
    .description(
      'End recovery on a standby: it picks a new timeline and accepts writes; returns once it does. ' +
        'With -D, signals the server running on that data directory (pg_ctl promote); with --node, asks the node over a session (pg_promote()).',
    )
    .addOption(new Option('-D, --data-dir <dir>', 'data directory of the standby (on this machine)').conflicts('node'))
    .addOption(new Option('--node <host:port>', 'the standby to promote, over the network').argParser(parseNodeList))
    .option('--no-wait', 'return once the request is sent, without waiting for the promotion (pg_ctl promote --no-wait)')
    .addOption(new Option('--timeout <s>', 'seconds to wait for the promotion (default: 60)').argParser(parseSecondsToMs))
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/promote.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('rewind')
    .summary('bring an old primary back as a standby of the new one (pg_rewind -R)')
    .description(
      'Synchronize a stopped data directory whose history forked from the source\'s: copy only the blocks changed since the divergence, the source\'s WAL and settings (keeping this node\'s port, application_name and key files), and write standby.signal and primary_conninfo pointing at the source.',
    )
    .addOption(dataDirOption())
    .addOption(new Option('--source <host:port>', 'the running node to follow (the new primary)').argParser(parseNodeAddress).makeOptionMandatory())
    .option('--dry-run', 'say what would be copied, change nothing')
    .option('--progress', 'draw progress on stderr even when it is not a terminal')
    .option('--quiet', 'no progress')
    .option('--json', 'print one JSON document')
    .addOption(new Option('--timeout <s>', 'seconds to wait for the connection (default: 30)').argParser(parseSecondsToMs))
    .action(
      lazy(
        () => import('./commands/rewind.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('verify')
    .summary('compare the pages of two nodes, block by block')
    .description(
      'Make both nodes write their dirty buffers (a checkpoint on a primary; on a standby, once it has replayed that far, a restartpoint), then compare the CRC of every page of every relation file. Exit 0 when identical, 1 when not.',
    )
    .addOption(
      new Option('--node <host:port>', 'a node to compare; give two (--node A --node B, or --node A,B)').argParser(
        (value: string, previous: unknown) => [...((previous as ReturnType<typeof parseNodeList> | undefined) ?? []), ...parseNodeList(value)],
      ),
    )
    .addOption(new Option('--timeout <s>', 'seconds to wait for a connection, and for a standby to replay up to its primary (default: 30 and 60)').argParser(parseSecondsToMs))
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/verify.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('stop')
    .summary('stop a node (pg_ctl stop)')
    .description('Stop the node of a data directory and wait until it has exited.')
    .addOption(dataDirOption())
    .addOption(
      new Option('--mode <mode>', 'smart (wait for clients), fast (disconnect them) or immediate (no shutdown checkpoint)')
        .argParser(parseStopMode)
        .default('fast'),
    )
    .addOption(new Option('--timeout <s>', 'seconds to wait for the node to exit (default: 60)').argParser(parseSecondsToMs))
    .action(
      lazy(
        () => import('./commands/stop.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('set')
    .summary('change a setting in walship.conf or on a running node')
    .description(
      'Change a setting: with -D in DIR/walship.conf (a running node is told to reload); with --node through the node, which writes its walship.conf and reloads.',
    )
    .argument('<name>', 'setting name, as in PostgreSQL (shared_buffers, synchronous_commit, ...)')
    .argument('<value>', 'value, with a unit where it has one (256MB, 3s)')
    .addOption(new Option('-D, --data-dir <dir>', 'data directory'))
    .addOption(new Option('--node <host:port>', 'node address HOST:PORT').argParser(parseNodeList))
    .addOption(timeoutOption())
    .action(
      lazy(
        () => import('./commands/set.js'),
        (args) => ({ ...optionsOf<object>(args), name: args[0] as string, value: args[1] as string }),
      ),
    );

  program
    .command('show')
    .summary('show settings from walship.conf (postgres -C)')
    .description('Show the settings of a data directory; with NAME, print only its value.')
    .argument('[name]', 'one setting')
    .addOption(dataDirOption())
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/show.js'),
        (args) => ({ ...optionsOf<Omit<ShowOptions, 'name'>>(args), name: args[0] as string | undefined }),
      ),
    );

  program
    .command('isready')
    .summary('check whether a node accepts connections (pg_isready)')
    .addOption(nodeOption())
    .addOption(new Option('--timeout <s>', 'seconds to wait for an answer (default: 3)').argParser(parseSecondsToMs))
    .option('-q, --quiet', 'print nothing; only the exit status tells')
    .action(
      lazy(
        () => import('./commands/isready.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('checkpoint')
    .summary('run a checkpoint on a node (CHECKPOINT)')
    .addOption(nodeOption())
    .addOption(timeoutOption())
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/checkpoint.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('status')
    .summary("show a node's role, WAL positions and replication")
    .addOption(nodeOption())
    .addOption(timeoutOption())
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/status.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('lag')
    .summary('watch replication lag: a live view, one sample, or a monitoring check')
    .description(
      'Replication lag of every member: state, sync state, lag in bytes behind the primary (from its one snapshot), ' +
        'write / flush / replay lag (the sender\'s lag tracker), replay delay, catch-up rate and ETA, slot retention. ' +
        'Without --once or --check, a live view refreshed every --interval until Ctrl-C (full screen on a terminal, ' +
        'plain samples otherwise). Standbys streaming from a given node are shown even when not given. With -f, the members of a cluster ' +
        'config, and its live state followed through failovers.',
    )
    .addOption(new Option('--node <host:port>', 'the members to watch, a list a:1,b:2 (default: $WALSHIP_NODE or 127.0.0.1:5433)').argParser(parseNodeList))
    .addOption(new Option('-f, --file <file>', 'watch the members of a cluster config (for example cluster-configs/local-3node.yaml)'))
    .addOption(new Option('--base-port <n>', "with -f: every member's port is N plus its port_offset (overrides base_port)").argParser(parsePort))
    .addOption(new Option('--data-root <dir>', 'with -f: where the cluster state lives (overrides data_root)'))
    .addOption(new Option('--interval <ms>', 'refresh every MS milliseconds, or a duration like 2s (default: 1000); --once waits this long between its two samples'))
    .option('--once', 'two samples --interval apart (rates need two), print the second and exit')
    .option('--json', 'with --once or --check: print one JSON document (members[], slots[], ...)')
    .option('--check', 'one sample, one line and a monitoring-plugin exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN')
    .addOption(new Option('--warn <threshold>', 'warning above this lag: a duration (500ms, 10s) for the replay lag, a size (16MB) for the lag in bytes, or both (10s,16MB)'))
    .addOption(new Option('--crit <threshold>', 'critical above this lag (same forms as --warn); a disconnected standby is always critical'))
    .addOption(new Option('--record <file>', 'append every sample to FILE, one JSON line each (for lag --report)'))
    .addOption(new Option('--report <file>', 'summarize a recording: p50 / p99 / max per standby and a chart'))
    .addOption(new Option('--html <out>', 'with --report: also write a self-contained HTML page with the lag over time per standby'))
    .addOption(new Option('--timeout <s>', 'seconds each member has to answer a sample (default: 3; in the live view at most the interval)').argParser(parseSecondsToMs))
    .action(
      lazy(
        () => import('./commands/lag.js'),
        (args) => optionsOf(args),
      ),
    );

  const slot = program
    .command('slot')
    .summary('create, drop or list physical replication slots on a primary')
    .description(
      'Replication slots keep the WAL a standby still needs while it is down or behind (pg_create_physical_replication_slot, pg_drop_replication_slot, pg_replication_slots).',
    );
  const slotNameArgument = (what: string) => ['<name>', `slot name (lower case letters, digits and _, at most 63) to ${what}`] as const;
  slot
    .command('create')
    .summary('create a slot, reserving WAL from the current redo pointer')
    .argument(...slotNameArgument('create'))
    .addOption(nodeOption())
    .addOption(timeoutOption())
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/slot.js'),
        (args) => ({ ...optionsOf<object>(args), action: 'create' as const, name: args[0] as string }),
      ),
    );
  slot
    .command('drop')
    .summary('drop a slot (not while a standby streams from it)')
    .argument(...slotNameArgument('drop'))
    .addOption(nodeOption())
    .addOption(timeoutOption())
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/slot.js'),
        (args) => ({ ...optionsOf<object>(args), action: 'drop' as const, name: args[0] as string }),
      ),
    );
  slot
    .command('list')
    .summary('list the slots with their restart LSN and WAL status (pg_replication_slots)')
    .addOption(nodeOption())
    .addOption(timeoutOption())
    .option('--json', 'print one JSON document: {"slots":[{"name","slotType","active","activePid","restartLsn","walStatus"}]}')
    .action(
      lazy(
        () => import('./commands/slot.js'),
        (args) => ({ ...optionsOf<{ dataDir: string }>(args), action: 'list' as const }),
      ),
    );

  const user = program
    .command('user')
    .summary('add, change, remove or list the users of a node (CREATE ROLE, ALTER ROLE, DROP ROLE)')
    .description(
      'Users authenticate with SCRAM-SHA-256 when auth_method is scram-sha-256; they are kept as verifiers in DIR/walship_authid.json, with their rights (read, write, replication, admin). Passwords come from WALSHIP_PASSWORD or a prompt on a terminal, never from a flag. A running node sees a change at its next connection.',
    );
  const userNameArgument = ['<name>', 'user name'] as const;
  const rightsHelp = 'comma-separated rights: read, write, replication, admin, or all';
  for (const [action, summary] of [
    ['add', 'add a user (default rights: read,write)'],
    ['passwd', 'change a user\'s password'],
    ['alter', 'change a user\'s rights (--rights)'],
    ['del', 'remove a user'],
  ] as const) {
    const sub = user.command(action).summary(summary).argument(...userNameArgument).addOption(dataDirOption());
    if (action === 'add' || action === 'alter') sub.addOption(new Option('--rights <list>', rightsHelp));
    sub.action(
      lazy(
        () => import('./commands/user.js'),
        (args) => ({ ...optionsOf<{ dataDir: string }>(args), action, name: args[0] as string }),
      ),
    );
  }
  user
    .command('list')
    .summary('list the users and their rights')
    .addOption(dataDirOption())
    .option('--json', 'print one JSON document: {"users":[{"name","rights"}]}')
    .action(
      lazy(
        () => import('./commands/user.js'),
        (args) => ({ ...optionsOf<{ dataDir: string }>(args), action: 'list' as const }),
      ),
    );

  // Data --------------------------------------------------------------------------------------

  program
    .command('put')
    .summary('write a key')
    .description(
      'Write a key; returns once the commit is acknowledged at the synchronous_commit level, and prints its commit LSN. ' +
        'When commits wait for synchronous standbys it waits with them, as long as it takes unless --timeout is given; ' +
        'after the timeout it reports the write as committed locally but not confirmed (indeterminate), with its LSN.',
    )
    .argument('<key>')
    .argument('<value>')
    .addOption(nodeOption())
    .addOption(clusterFileOption('write to whichever member is the primary now, following a failover'))
    .addOption(basePortOption())
    .addOption(dataRootOption())
    .addOption(syncCommitOption())
    .addOption(timeoutOption())
    .addOption(tableOption())
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/put.js'),
        (args) => ({ ...optionsOf<object>(args), key: args[0] as string, value: args[1] as string }),
      ),
    );

  program
    .command('get')
    .summary('read a key (prints the raw value; exit 1 if missing)')
    .argument('<key>')
    .addOption(nodeOption())
    .addOption(new Option('--min-lsn <lsn>', 'wait until the node has replayed this LSN (read your writes)').argParser(parseLsnArgument))
    .addOption(new Option('--min-lsn-timeline <tli>', 'the timeline --min-lsn was written on (as a write reports it): fail at once on a node whose history left it before then').argParser(parsePositiveInteger))
    .addOption(clusterFileOption('read from whichever member is the primary now, following a failover (see --target-session-attrs)'))
    .addOption(basePortOption())
    .addOption(dataRootOption())
    .addOption(targetSessionAttrsOption())
    .addOption(timeoutOption())
    .addOption(tableOption())
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/get.js'),
        (args) => ({ ...optionsOf<object>(args), key: args[0] as string }),
      ),
    );

  program
    .command('wait-lsn')
    .summary('wait until a node has written, flushed or replayed an LSN (WAIT FOR LSN)')
    .description(
      'Wait until the node has reached LSN (the commit LSN put prints): on a standby, standby_replay (the default) means a read there sees that commit; ' +
        'standby_write and standby_flush wait for its walreceiver; primary_flush waits for a primary\'s own flush. Prints "success".',
    )
    .argument('<lsn>', 'the LSN, as PostgreSQL prints it (0/16B3748)', parseLsnArgument)
    .addOption(nodeOption())
    .addOption(new Option('--mode <mode>', 'standby_replay (default), standby_write, standby_flush or primary_flush').argParser(parseWaitLsnMode))
    .addOption(timeoutOption())
    .option('--json', 'print one JSON document: {"status","mode","targetLsn","lsn","node"}')
    .action(
      lazy(
        () => import('./commands/wait-lsn.js'),
        (args) => ({ ...optionsOf<object>(args), lsn: args[0] as number }),
      ),
    );

  program
    .command('del')
    .summary('delete a key')
    .argument('<key>')
    .addOption(nodeOption())
    .addOption(clusterFileOption('write to whichever member is the primary now, following a failover'))
    .addOption(basePortOption())
    .addOption(dataRootOption())
    .addOption(syncCommitOption())
    .addOption(timeoutOption())
    .addOption(tableOption())
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/del.js'),
        (args) => ({ ...optionsOf<object>(args), key: args[0] as string }),
      ),
    );

  program
    .command('scan')
    .summary('list keys in order')
    .description('List entries in key order: all, those with a prefix, or those in [start, end).')
    .addOption(nodeOption())
    .option('--prefix <p>', 'keys starting with P')
    .option('--start <a>', 'first key (inclusive)')
    .option('--end <b>', 'end key (exclusive)')
    .addOption(new Option('--limit <n>', 'at most N entries').argParser(parsePositiveInteger))
    .addOption(new Option('--min-lsn <lsn>', 'wait until the node has replayed this LSN').argParser(parseLsnArgument))
    .addOption(new Option('--min-lsn-timeline <tli>', 'the timeline --min-lsn was written on: fail at once on a node whose history left it before then').argParser(parsePositiveInteger))
    .addOption(clusterFileOption('read from whichever member is the primary now, following a failover (see --target-session-attrs)'))
    .addOption(basePortOption())
    .addOption(dataRootOption())
    .addOption(targetSessionAttrsOption())
    .addOption(timeoutOption())
    .addOption(tableOption())
    .option('--json', 'print one JSON document: {"entries":[{"key","value","revision"}]}')
    .action(
      lazy(
        () => import('./commands/scan.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('load')
    .summary('bulk writes: generated keys, or KEY VALUE lines from stdin with "-"')
    .argument('[source]', '"-" to read KEY VALUE lines from stdin, one transaction each')
    .addOption(nodeOption())
    .addOption(new Option('--count <n>', 'keys to write (default: 10000)').argParser(parsePositiveInteger))
    .addOption(new Option('--value-size <bytes>', 'bytes per value (default: 100)').argParser(parseByteSize))
    .option('--prefix <p>', 'key prefix (default: "key")')
    .addOption(new Option('--clients <c>', 'concurrent sessions (default: 4)').argParser(parsePositiveInteger))
    .addOption(syncCommitOption())
    .addOption(timeoutOption())
    .addOption(tableOption())
    .option('--progress', 'draw progress on stderr even when it is not a terminal')
    .option('--quiet', 'no progress')
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/load.js'),
        (args) => ({ ...optionsOf<object>(args), source: args[0] as string | undefined }),
      ),
    );

  // Tools -------------------------------------------------------------------------------------

  program
    .command('waldump')
    .summary('print the WAL records of a data directory (pg_waldump)')
    .addOption(dataDirOption())
    .addOption(new Option('--start <lsn>', 'first record at or after this LSN').argParser(parseLsnArgument))
    .addOption(new Option('--end <lsn>', 'stop before this LSN').argParser(parseLsnArgument))
    .addOption(new Option('-n, --limit <n>', 'at most N records').argParser(parsePositiveInteger))
    .option('--json', 'print one JSON document')
    .option('--key-file <file>', "an encrypted data directory's cluster key (default: its cluster_key_file or cluster_key_command)")
    .action(
      lazy(
        () => import('./commands/waldump.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('controldata')
    .summary('print the control file of a data directory (pg_controldata)')
    .addOption(dataDirOption())
    .option('--json', 'print one JSON document')
    .option('--key-file <file>', 'check that this cluster key unwraps an encrypted data directory\'s keys')
    .action(
      lazy(
        () => import('./commands/controldata.js'),
        (args) => optionsOf(args),
      ),
    );

  program
    .command('bench')
    .summary('measure commit throughput and latency')
    .addOption(nodeOption())
    .addOption(new Option('--clients <n>', 'concurrent sessions (default: 8)').argParser(parsePositiveInteger))
    .addOption(new Option('--duration <s>', 'seconds to run (default: 10)').argParser(parseSecondsToMs))
    .addOption(new Option('--warmup <s>', 'seconds of unmeasured writes first (default: 0)').argParser(parseSecondsOrZeroToMs))
    .addOption(new Option('--value-size <bytes>', 'bytes per value (default: 100)').argParser(parseByteSize))
    .addOption(new Option('--keys <k>', 'distinct keys written (default: 10000)').argParser(parsePositiveInteger))
    .addOption(syncCommitOption())
    .addOption(tableOption())
    .option('--progress', 'draw progress on stderr even when it is not a terminal')
    .option('--quiet', 'no progress')
    .option('--json', 'print one JSON document')
    .action(
      lazy(
        () => import('./commands/bench.js'),
        (args) => optionsOf(args),
      ),
    );

  // Cluster -----------------------------------------------------------------------------------

  const cluster = program
    .command('cluster')
    .summary('clusters from cluster-configs/*.yaml: up, down, status, switchover, failover, rejoin')
    .description(
      'A primary and its standbys on this machine, from a cluster config (cluster-configs/*.yaml). The live state (who is primary now) ' +
        'is kept in the data root, and every command acts on it, not on the roles the file started with.',
    );
  /** A cluster subcommand with -f, --base-port and --data-root (DESIGN.md section 10). */
  const clusterCommand = (name: string, summary: string) =>
    cluster
      .command(name)
      .summary(summary)
      .addOption(new Option('-f, --file <file>', 'cluster config (for example cluster-configs/local-3node.yaml)').makeOptionMandatory())
      .addOption(new Option('--base-port <n>', "every member's port is N plus its port_offset (overrides base_port)").argParser(parsePort))
      .addOption(new Option('--data-root <dir>', "where the members' data, the cluster state and its history live (overrides data_root)"));
  const clusterTimeoutOption = () =>
    new Option('--timeout <s>', 'seconds to wait for each step: a member to start, standbys to stream, a target to catch up (default: 60)').argParser(parseSecondsToMs);
  const memberArgument = ['<node>', 'member name, as in the config'] as const;

  clusterCommand('validate', 'check a cluster config without starting anything')
    .option('--json', 'print one JSON document: the resolved config, or {"valid": false, "problems": [...]}')
    .action(lazy(() => import('./commands/cluster-validate.js'), (args) => optionsOf(args)));

  clusterCommand('up', 'create or start the cluster in its current roles, and wait until every standby streams')
    .description(
      'The first time: create the primary (init), base-backup each standby from its upstream, start them. After that: start what is stopped, ' +
        'in the roles the cluster state gives (a fenced old primary is rewound and rejoins as a standby when auto_rejoin is on), leave what runs. ' +
        'Nothing is created again without --reset.',
    )
    .option('--reset', 'stop every member and delete the cluster\'s data, state and history first')
    .addOption(clusterTimeoutOption())
    .option('--progress', 'print progress on stderr even when it is not a terminal')
    .option('--quiet', 'no progress')
    .option('--json', 'print one JSON document: members[] and what was created, started, rejoined')
    .action(lazy(() => import('./commands/cluster-up.js'), (args) => optionsOf(args)));

  clusterCommand('down', 'stop every member, the primary first')
    .addOption(
      new Option('--mode <mode>', 'smart (wait for clients), fast (disconnect them) or immediate (no shutdown checkpoint)').argParser(parseStopMode).default('fast'),
    )
    .addOption(clusterTimeoutOption())
    .option('--progress', 'print progress on stderr even when it is not a terminal')
    .option('--quiet', 'no progress')
    .option('--json', 'print one JSON document')
    .action(lazy(() => import('./commands/cluster-down.js'), (args) => optionsOf(args)));

  clusterCommand('status', "one row per member: role, state, timeline, LSN, lag, sync state (patronictl list)")
    .option('--json', 'print one JSON document: members[] with name, address, port, metricsPort, role, state, timeline, lsn, lagBytes, writeLagMs, flushLagMs, replayLagMs, syncState')
    .action(lazy(() => import('./commands/cluster-status.js'), (args) => optionsOf(args)));

  const memberActions: Array<['stop' | 'start' | 'kill' | 'reinit' | 'rejoin', string]> = [
    ['stop', 'stop one member (fast, or --mode)'],
    ['start', 'start one member in its current role (a standby follows its current upstream)'],
    ['kill', 'SIGKILL one member, as a crash would (its role does not change)'],
    ['reinit', 'copy a standby again from its upstream (its data directory is replaced)'],
    ['rejoin', 'rewind an old primary (or a standby that cannot follow) and start it as a standby'],
  ];
  for (const [action, summary] of memberActions) {
    const command = clusterCommand(action, summary).argument(...memberArgument);
    if (action === 'stop') {
      command.addOption(new Option('--mode <mode>', 'smart, fast or immediate').argParser(parseStopMode).default('fast'));
    }
    command
      .addOption(clusterTimeoutOption())
      .option('--progress', 'print progress on stderr even when it is not a terminal')
      .option('--quiet', 'no progress')
      .option('--json', 'print one JSON document')
      .action(lazy(() => import('./commands/cluster-member.js'), (args) => ({ ...optionsOf<ClusterFileOptions>(args), action, member: args[0] as string })));
  }

  clusterCommand('partition', "cut a member's links (the partition proxy), or slow them with --latency")
    .argument(...memberArgument)
    .addOption(new Option('--latency <ms>', 'slow the links by MS milliseconds instead of cutting them').argParser(parsePositiveInteger))
    .option('--json', 'print one JSON document')
    .action(lazy(() => import('./commands/cluster-partition.js'), (args) => ({ ...optionsOf<ClusterFileOptions>(args), action: 'partition' as const, member: args[0] as string })));

  clusterCommand('heal', "open a member's links again (every member's without NODE)")
    .argument('[node]', 'member name, as in the config')
    .option('--json', 'print one JSON document')
    .action(lazy(() => import('./commands/cluster-partition.js'), (args) => ({ ...optionsOf<ClusterFileOptions>(args), action: 'heal' as const, member: args[0] as string | undefined })));

  clusterCommand('proxy', 'the partition proxy in the foreground (cluster up starts it when the config has proxy:)')
    .option('--stop', 'stop the running proxy of this cluster')
    .action(lazy(() => import('./commands/cluster-proxy.js'), (args) => optionsOf(args)));

  clusterCommand('switchover', 'planned change of primary, no acknowledged write lost; the old primary becomes a standby')
    .option('--to <name>', 'the standby to promote (default: chosen by the failover rules)')
    .addOption(clusterTimeoutOption())
    .option('--progress', 'print progress on stderr even when it is not a terminal')
    .option('--quiet', 'no progress')
    .option('--json', 'print one JSON document: from, to, timeline, unavailableMs, decision, members[]')
    .action(lazy(() => import('./commands/cluster-change.js'), (args) => ({ ...optionsOf<ClusterFileOptions>(args), kind: 'switchover' as const })));

  clusterCommand('failover', 'promote a standby now (the primary is gone) and fence the old primary')
    .option('--to <name>', 'the standby to promote (default: the most advanced eligible one)')
    .option('--force', 'set aside the synchronous and lag rules (acknowledged writes may be lost), and kill a primary that still answers')
    .addOption(clusterTimeoutOption())
    .option('--progress', 'print progress on stderr even when it is not a terminal')
    .option('--quiet', 'no progress')
    .option('--json', 'print one JSON document: from, to, timeline, decision (candidates and reasons), members[]')
    .action(lazy(() => import('./commands/cluster-change.js'), (args) => ({ ...optionsOf<ClusterFileOptions>(args), kind: 'failover' as const })));

  clusterCommand('monitor', 'the failover monitor in the foreground (cluster up starts it when failover.mode is automatic)')
    .description(
      'Check the primary every health_check_interval and fail over when it misses missed_checks checks and its lease has run out; ' +
        'each decision goes to DATA_ROOT/monitor.log (JSON lines) and to stderr. One monitor per cluster (DATA_ROOT/monitor.pid).',
    )
    .option('--stop', 'stop the running monitor of this cluster')
    .addOption(new Option('--supervise', 'run the monitor as a child and restart it when it dies (what cluster up starts)').hideHelp())
    .addOption(new Option('--worker', "the supervisor's child").hideHelp())
    .action(lazy(() => import('./commands/cluster-monitor.js'), (args) => optionsOf(args)));

  clusterCommand('history', 'switchovers, failovers (with their decisions), rejoins, oldest first')
    .option('--json', 'print one JSON document: {"events": [...]}')
    .action(lazy(() => import('./commands/cluster-history.js'), (args) => optionsOf(args)));

  clusterCommand('logs', "the last lines of each member's log")
    .argument('[node]', 'only this member')
    .addOption(new Option('-n, --lines <n>', 'lines per member (default: 20)').argParser(parsePositiveInteger))
    .option('--follow', 'keep printing new lines until interrupted')
    .action(lazy(() => import('./commands/cluster-logs.js'), (args) => ({ ...optionsOf<ClusterFileOptions>(args), member: args[0] as string | undefined })));

  program
    .command('drill')
    .summary('a failover drill: write load, fault, settle, and a check that no acknowledged write was lost')
    .argument('<scenario>', 'kill-primary, hang-primary, partition-primary, kill-sync-standby, slow-standby, switchover or rejoin')
    .addOption(new Option('-f, --file <file>', 'cluster config (for example cluster-configs/local-3node.yaml)').makeOptionMandatory())
    .addOption(new Option('--base-port <n>', "every member's port is N plus its port_offset (overrides base_port)").argParser(parsePort))
    .addOption(new Option('--data-root <dir>', "where the members' data, the cluster state and its history live (overrides data_root)"))
    .addOption(new Option('--duration <s>', 'seconds the load runs after the fault (default: 5)').argParser(parseSecondsToMs))
    .addOption(new Option('--rate <r>', 'load writes per second (default: 100)').argParser(parsePositiveInteger))
    .addOption(new Option('--clients <n>', 'load clients (default: 4)').argParser(parsePositiveInteger))
    .addOption(new Option('--timeout <s>', 'seconds the cluster may take to settle (default: 30)').argParser(parseSecondsToMs))
    .option('--progress', 'print progress on stderr even when it is not a terminal')
    .option('--quiet', 'no progress')
    .option('--json', 'print one JSON document: scenario, verdict, ackedWrites, ackedWritesLost, indeterminateWrites, splitBrainMs, detectionMs, promotionMs, unavailableMs, timelines, oldPrimaryRejoined, ...')
    .action(
      lazy(
        () => import('./commands/drill.js'),
        (args) => {
          const scenario = args[0] as string;
          const scenarios = ['kill-primary', 'hang-primary', 'partition-primary', 'kill-sync-standby', 'slow-standby', 'switchover', 'rejoin'] as const;
          const known = scenarios.find((name) => name === scenario);
          if (known === undefined) {
            throw new CliError(ExitCode.usage, `unknown drill scenario "${scenario}"`, {
              hint: `Use one of ${scenarios.join(', ')} (partition-primary and slow-standby need the partition proxy: proxy: true in the config).`,
            });
          }
          return { ...optionsOf<ClusterFileOptions>(args), scenario: known };
        },
      ),
    );

  return program;
}

/** Prints an error as the CLI does and returns its exit status. */
export function reportError(error: unknown, io: CliIo): number {
  if (error instanceof CommanderError) {
    // Commander has printed it already (through outputError); help and version exit 0.
    return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (error instanceof CliError) {
    io.stderr.write(formatErrorText(error.message, error.detail, error.hint));
    return error.exitCode;
  }
  const errorName = error !== null && typeof error === 'object' ? (error as { name?: unknown }).name : undefined;
  // WalshipError (engine, settings) and ClusterError / ClusterConfigError (@walship/cluster): a
  // failed operation with its own detail and hint.
  if (errorName === 'WalshipError' || errorName === 'ClusterError' || errorName === 'ClusterConfigError') {
    const walshipError = error as { message: string; detail?: string; hint?: string };
    io.stderr.write(formatErrorText(walshipError.message, walshipError.detail, walshipError.hint));
    return ExitCode.failed;
  }
  const message = error instanceof Error ? error.message : String(error);
  io.stderr.write(
    formatErrorText(message, undefined, 'This is unexpected; run again with WALSHIP_DEBUG=1 to see where it happened, and report it.'),
  );
  if (io.env.WALSHIP_DEBUG !== undefined && error instanceof Error && error.stack !== undefined) io.stderr.write(`${error.stack}\n`);
  return ExitCode.failed;
}

/** Runs the program on `args` (without node and script) and returns the exit status. */
export async function runCli(args: readonly string[], io: CliIo = processIo()): Promise<number> {
  let exitCode: number = ExitCode.ok;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...args], { from: 'user' });
    return exitCode;
  } catch (error) {
    // `walship lag --check` is a monitoring plugin: a command line it cannot parse is UNKNOWN (3)
    // with one line on stdout, not a usage error (2, which a monitoring system reads as CRITICAL).
    if (error instanceof CommanderError && error.exitCode !== 0 && isLagCheck(args)) {
      io.stdout.write(`WALSHIP_REPLICATION_LAG UNKNOWN: ${error.message.replace(/^error: /, '').replace(/\s+/g, ' ').trim()}\n`);
      return ExitCode.unreachable;
    }
    return reportError(error, io);
  }
}

/** Whether a command line is `walship lag ... --check ...`. */
function isLagCheck(args: readonly string[]): boolean {
  return args.find((arg) => !arg.startsWith('-')) === 'lag' && args.includes('--check');
}
