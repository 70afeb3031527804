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
  postgres: number;
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

/** The postmaster and its children: a backend that exited before the sample is not counted. */
function postgresSeconds(dataDir: string): number {
  const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  let total = processStat(postmaster)?.cpu ?? 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = processStat(Number(entry));
    if (stat?.parent === postmaster) total += stat.cpu;
  }
  return total;
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
    postgres: postgresSeconds(postgresDataDir),
  };
}

/** CPU milliseconds per task of each side between two samples. */
export function cpuPerTask(from: CpuSample, to: CpuSample, tasks: number): CpuSample & { total: number } {
  const per = (key: keyof CpuSample) => ((to[key] - from[key]) * 1_000) / tasks;
  const bench = per('bench');
  const replicas = per('replicas');
  const postgres = per('postgres');
  return { bench, replicas, postgres, total: bench + replicas + postgres };
}
