import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * CPU time spent by the processes a scenario runs on this machine, from /proc (Linux): the
 * benchmark's own process (its load generators and SDK agents), each replica, and the scratch
 * PostgreSQL server (the postmaster and every backend and helper it started). On two cores all of
 * them share the same CPUs, so a rate is bounded by their CPU per task added up.
 */
export interface CpuSample {
  bench: number;
  replicas: number;
  /** Each PostgreSQL process's CPU seconds by pid: a backend that exits takes its total with it. */
  postgres: Map<number, number>;
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/** utime + stime of a process in seconds, and its parent; undefined once it has exited. */
function processStat(pid: number): { cpu: number; parent: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { cpu: (Number(fields[11]) + Number(fields[12])) / clockTicks(), parent: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

/** The postmaster and its children, by pid. */
function postgresProcesses(dataDir: string): Map<number, number> {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const seconds = new Map<number, number>([[postmaster, processStat(postmaster)?.cpu ?? 0]]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = processStat(Number(entry));
    if (stat?.parent === postmaster) seconds.set(Number(entry), stat.cpu);
  }
  return seconds;
}

/**
 * What the PostgreSQL processes alive at `to` spent since `from` (all of it for one started
 * since). A backend that exited in between (a pool closing an idle connection) is left out: summing
 * totals instead, its exit took everything it had ever spent off the second sum.
 */
function postgresSpent(from: Map<number, number>, to: Map<number, number>): number {
  let spent = 0;
  for (const [pid, seconds] of to) spent += seconds - (from.get(pid) ?? 0);
  return spent;
}

/** One process's CPU seconds (user + system) so far; 0 once it has exited. */
export function processCpuSeconds(pid: number): number {
  return processStat(pid)?.cpu ?? 0;
}

export function sampleCpu(replicaPids: readonly number[], postgresDataDir: string): CpuSample {
  const own = process.cpuUsage();
  return {
    bench: (own.user + own.system) / 1e6,
    replicas: replicaPids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0),
    postgres: postgresProcesses(postgresDataDir),
  };
}

/** CPU milliseconds per task of each side between two samples. */
export function cpuPerTask(from: CpuSample, to: CpuSample, tasks: number): { bench: number; replicas: number; postgres: number; total: number } {
  const bench = ((to.bench - from.bench) * 1_000) / tasks;
  const replicas = ((to.replicas - from.replicas) * 1_000) / tasks;
  const postgres = (postgresSpent(from.postgres, to.postgres) * 1_000) / tasks;
  return { bench, replicas, postgres, total: bench + replicas + postgres };
}
