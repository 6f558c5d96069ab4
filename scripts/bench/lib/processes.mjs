// Process bookkeeping for the benchmark scripts: a cleanup list run once at the end, also on
// Ctrl-C, SIGTERM, SIGHUP or an uncaught failure; children started in process groups of their own
// so that a whole group can be killed; the process tree of a server and its CPU time from
// /proc/PID/stat.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

const cleanups = [];
let cleaning = null;

/** True once the cleanups have started: failures seen after that are their consequence, not news. */
export function stopping() {
  return cleaning !== null;
}

/** Registers fn (sync or async) to run at cleanup, newest first. Returns a function that unregisters it. */
export function onCleanup(fn) {
  cleanups.push(fn);
  return () => {
    const at = cleanups.indexOf(fn);
    if (at >= 0) cleanups.splice(at, 1);
  };
}

/** Runs every registered cleanup once, newest first; a failing one is reported and the rest still run. */
export function runCleanups() {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const fn = cleanups.pop();
      try {
        await fn();
      } catch (error) {
        process.stderr.write(`cleanup: ${error?.message ?? error}\n`);
      }
    }
  })();
  return cleaning;
}

/**
 * On SIGINT, SIGTERM, SIGHUP, an uncaught exception or an unhandled rejection: run the cleanups,
 * then exit (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP, 1 for a failure). A second signal
 * while cleaning up exits at once.
 */
export function installCleanupHandlers() {
  const exitCodes = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  let signalled = false;
  for (const [signal, code] of Object.entries(exitCodes)) {
    process.on(signal, () => {
      if (signalled) process.exit(code);
      signalled = true;
      process.stderr.write(`\n${signal}: stopping every process this benchmark started...\n`);
      void runCleanups().finally(() => process.exit(code));
    });
  }
  const fatal = (error) => {
    process.stderr.write(`\n${error?.stack ?? error}\n`);
    void runCleanups().finally(() => process.exit(1));
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}

/** True when a process with this pid exists (and is not a zombie). */
export function alive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readStat(pid);
  return stat !== null && stat.state !== 'Z';
}

/**
 * Resolves once no process has this pid any more, zombies included (a SIGKILLed server's
 * postmaster.pid names it, and PostgreSQL refuses to start while kill(pid, 0) still succeeds, as
 * it does on a zombie that init has not reaped yet).
 */
export async function waitGone(pid, timeoutMs = 30_000) {
  const startedAt = performance.now();
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch (error) {
      if (error.code === 'ESRCH') return;
    }
    if (performance.now() - startedAt > timeoutMs) {
      throw new Error(`process ${pid} is still there ${timeoutMs / 1000} s after SIGKILL (a zombie nobody reaps?)`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The fields of /proc/PID/stat this module needs, or null when the process is gone. */
export function readStat(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 of proc(5): state; ppid 4, pgrp 5; utime 14, stime 15, cutime 16, cstime 17.
  return {
    state: fields[0],
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    utime: Number(fields[11]),
    stime: Number(fields[12]),
    cutime: Number(fields[13]),
    cstime: Number(fields[14]),
  };
}

/** Every live process whose parent chain leads to pid (not pid itself). */
export function descendants(pid) {
  const parents = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat !== null) parents.set(Number(entry), stat.ppid);
  }
  const found = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const parent = frontier.pop();
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child);
        frontier.push(child);
      }
    }
  }
  return found;
}

/**
 * SIGKILLs pid, everything under it, and the process groups they lead (PostgreSQL's children each
 * lead a group of their own; a detached Node child leads one). Children are listed first, so that
 * none is missed when the parent dies and they are reparented.
 */
export function killTree(pid, signal = 'SIGKILL') {
  const victims = [...descendants(pid), pid];
  for (const victim of victims) {
    const stat = readStat(victim);
    try {
      if (stat !== null && stat.pgrp === victim) process.kill(-victim, signal);
      else process.kill(victim, signal);
    } catch {
      // Already gone.
    }
  }
}

let clockTicksPerSecond = null;
function ticksPerSecond() {
  if (clockTicksPerSecond === null) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clockTicksPerSecond = Number(r.stdout.trim()) || 100;
  }
  return clockTicksPerSecond;
}

/**
 * CPU time in microseconds used so far by the process pid and every process under it, counting
 * the children they have already reaped (cutime, cstime): so a PostgreSQL backend that exits
 * between two readings is still counted, in its postmaster's cutime.
 */
export function treeCpuMicros(pid) {
  let ticks = 0;
  for (const member of [pid, ...descendants(pid)]) {
    const stat = readStat(member);
    if (stat !== null) ticks += stat.utime + stat.stime + stat.cutime + stat.cstime;
  }
  return (ticks / ticksPerSecond()) * 1e6;
}

/**
 * CPU time in microseconds of the children this process has started and reaped (its cutime and
 * cstime): read before and after a load generator runs, the difference is that generator's CPU.
 */
export function reapedChildrenCpuMicros() {
  const stat = readStat(process.pid);
  return ((stat.cutime + stat.cstime) / ticksPerSecond()) * 1e6;
}

/**
 * The machine's CPU time so far, from /proc/stat's first line, in clock ticks: { busy, idle,
 * iowait, steal, total }. Read around a run, it says how much of the machine the run had: steal is
 * time the hypervisor gave this virtual machine's CPUs to someone else, which slows whatever runs
 * then and nothing in the run can account for. Null where /proc/stat is not readable.
 */
export function machineCpuTicks() {
  let line;
  try {
    line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  } catch {
    return null;
  }
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest time is in user).
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const busy = user + nice + system + irq + softirq;
  return { busy, idle, iowait, steal, total: busy + idle + iowait + steal };
}

/**
 * The machine's disks so far, from /proc/diskstats, summed over whole disks (those in /sys/block,
 * not loop, ram or zram devices): { sectorsWritten, ioMs, flushes }. ioMs is the time the
 * disks had I/O in flight; read around a run, it says how busy the disk was, with the run's own
 * WAL and with anything else (the kernel's writeback, a deleted file's discard). Null where
 * /proc/diskstats is not readable.
 */
export function diskTotals() {
  let text;
  let disks;
  try {
    text = fs.readFileSync('/proc/diskstats', 'utf8');
    disks = new Set(fs.readdirSync('/sys/block').filter((name) => !/^(loop|ram|zram)/.test(name)));
  } catch {
    return null;
  }
  const totals = { sectorsWritten: 0, ioMs: 0, flushes: 0 };
  for (const line of text.split('\n')) {
    // major minor name, then: reads, merged, sectors, ms; writes, merged, sectors, ms; in flight,
    // io ms, weighted ms; discards (4 fields); flushes, flush ms (kernels from 5.5).
    const fields = line.trim().split(/\s+/);
    if (fields.length < 14 || !disks.has(fields[2])) continue;
    totals.sectorsWritten += Number(fields[9]);
    totals.ioMs += Number(fields[12]);
    totals.flushes += fields.length >= 20 ? Number(fields[18]) : 0;
  }
  return totals;
}

/**
 * Starts a child in a process group of its own (so that it and whatever it starts can be killed
 * as one), registered for cleanup until it exits. Resolves `done` with { code, signal, stdout,
 * stderr } (stdout and stderr kept when piped).
 */
export function spawnGroup(command, args, options = {}) {
  const child = spawn(command, args, { ...options, detached: true, stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'] });
  const unregister = onCleanup(() => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => { stdout += d; });
  child.stderr?.on('data', (d) => { stderr += d; });
  const done = new Promise((resolve, reject) => {
    child.once('error', (error) => { unregister(); reject(error); });
    child.once('close', (code, signal) => { unregister(); resolve({ code, signal, stdout, stderr }); });
  });
  return { child, done };
}
