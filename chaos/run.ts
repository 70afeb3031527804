/**
 * `npm run chaos` (full profile) and `npm run chaos:ci` (short profile): a swarm of Dispatch
 * replicas under faults, then checks. Exits 0 only when every check passes.
 *
 *   tsx chaos/run.ts [--profile full|short] [--seed <text>] [--tasks N] [--agents N] [--autovacuum on|off]
 *                    [--json <file>]
 *
 * --autovacuum off runs the swarm's PostgreSQL with the queue maintenance alone (default on).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fullProfile, shortProfile } from './lib/profile.js';
import { formatReport } from './lib/report.js';
import { runChaos } from './lib/run-chaos.js';
import { disposeAllSwarms } from './lib/swarm.js';

const { values } = parseArgs({
  options: {
    profile: { type: 'string', default: 'full' },
    seed: { type: 'string', default: 'dispatch-chaos' },
    tasks: { type: 'string' },
    agents: { type: 'string' },
    autovacuum: { type: 'string', default: 'on' },
    json: { type: 'string' },
  },
});

const base = values.profile === 'short' ? shortProfile(values.seed) : values.profile === 'full' ? fullProfile(values.seed) : null;
if (!base) {
  process.stderr.write(`unknown profile "${values.profile}" (full or short)\n`);
  process.exit(2);
}
if (values.autovacuum !== 'on' && values.autovacuum !== 'off') {
  process.stderr.write(`--autovacuum takes on or off, not "${values.autovacuum}"\n`);
  process.exit(2);
}
for (const flag of ['tasks', 'agents'] as const) {
  const value = values[flag];
  if (value !== undefined && !(Number.isInteger(Number(value)) && Number(value) >= 1)) {
    process.stderr.write(`--${flag} takes a whole number of at least 1, not "${value}"\n`);
    process.exit(2);
  }
}
const profile = {
  ...base,
  autovacuum: values.autovacuum === 'on',
  ...(values.tasks ? { tasks: Number(values.tasks) } : {}),
  ...(values.agents ? { agents: Number(values.agents) } : {}),
};

const started = Date.now();
// stdout, not console: the CLI's output is its report (and the lint rule keeps console out of code).
const print = (text: string) => process.stdout.write(`${text}\n`);
const log = (line: string) => print(`[chaos +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`);

// Ctrl-C or a CI cancel: tear the swarm down (replicas, NATS, PostgreSQL, temp dirs) first.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    const force = setTimeout(() => process.exit(130), 30_000);
    force.unref();
    void disposeAllSwarms().finally(() => process.exit(130));
  });
}

try {
  const report = await runChaos({ profile, log });
  print(formatReport(report));
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2));
  process.exit(report.ok ? 0 : 1);
} catch (error) {
  process.stderr.write(`chaos run crashed: ${(error as Error).stack ?? String(error)}\n`);
  await disposeAllSwarms();
  process.exit(1);
}
