import { openDatabase, type DatabaseHandle } from '../../src/db/database.js';

/**
 * The plans of the product's own queries, as PostgreSQL ran them. A pool whose connections load
 * auto_explain and send every plan (with actual times and buffers) to the client as a notice:
 * the benchmark calls the real query functions (listTasks, claimPendingTasks, ...) and reads
 * what they did, so no copy of their SQL can drift from the code.
 */
export interface PlanCapture {
  handle: DatabaseHandle;
  /** Runs `fn` and returns the plans of the statements it ran that read `tables`. */
  plansOf(fn: () => Promise<unknown>): Promise<StatementPlan[]>;
}

export interface StatementPlan {
  /** How each watched table was read ("Index Scan using x", "Seq Scan on t"), and any sort after. */
  access: string[];
  seqScan: boolean;
  /** The executor's time for the statement as auto_explain measured it (EXPLAIN ANALYZE's Execution Time). */
  ms: number;
  buffers: number;
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Total Time'?: number;
  'Actual Rows'?: number;
  'Sort Method'?: string;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

const SESSION = {
  session_preload_libraries: 'auto_explain',
  'auto_explain.log_min_duration': '0',
  'auto_explain.log_analyze': 'on',
  // The statements inside functions too: the claim and the batch's write are PL/pgSQL functions.
  'auto_explain.log_nested_statements': 'on',
  'auto_explain.log_buffers': 'on',
  'auto_explain.log_format': 'json',
  // NOTICE reaches the client at the default client_min_messages; LOG would only go to the server log.
  'auto_explain.log_level': 'notice',
};

function readAccess(node: PlanNode, tables: ReadonlySet<string>, into: string[]): void {
  // A bitmap scan names its table on the heap node and its index on the child, which has no table.
  if (node['Node Type'] === 'Bitmap Index Scan') into.push(`Bitmap Index Scan using ${node['Index Name']}`);
  else if (node['Relation Name'] && tables.has(node['Relation Name'])) {
    into.push(node['Index Name'] ? `${node['Node Type']} using ${node['Index Name']}` : `${node['Node Type']} on ${node['Relation Name']}`);
  }
  for (const child of node.Plans ?? []) readAccess(child, tables, into);
  // A sort reads all of its input before its first row: the count says how much an index did not
  // spare (an index read in the wrong order, then every matching row sorted for a page of 50).
  if (node['Node Type'] === 'Sort') into.push(`Sort of ${node.Plans?.[0]?.['Actual Rows'] ?? '?'} rows (${node['Sort Method'] ?? '?'})`);
}

export function openPlanCapture(url: string, tables: readonly string[]): PlanCapture {
  // One connection: every notice between a call's start and its end belongs to that call.
  const handle = openDatabase(url, 1, 'dispatch-bench-plans', SESSION);
  const watched = new Set(tables);
  let notices: string[] = [];
  handle.pool.on('connect', (client) => client.on('notice', (notice) => notices.push(notice.message ?? '')));
  return {
    handle,
    async plansOf(fn) {
      notices = [];
      await fn();
      const plans: StatementPlan[] = [];
      for (const message of notices) {
        const start = message.indexOf('{');
        if (!message.includes('plan:') || start < 0) continue;
        const top = (JSON.parse(message.slice(start)) as { Plan: PlanNode }).Plan;
        // "duration: 0.123 ms  plan: {...}": the whole statement; the top node's time leaves out
        // what runs after its last row (ExecutorFinish).
        const duration = Number(/duration: ([\d.]+) ms/.exec(message)?.[1] ?? Number.NaN);
        const access: string[] = [];
        readAccess(top, watched, access);
        if (!access.some((a) => !a.startsWith('Sort'))) continue;
        plans.push({
          access,
          seqScan: access.some((a) => a.startsWith('Seq Scan')),
          ms: Number.isFinite(duration) ? duration : (top['Actual Total Time'] ?? Number.NaN),
          buffers: (top['Shared Hit Blocks'] ?? 0) + (top['Shared Read Blocks'] ?? 0),
        });
      }
      return plans;
    },
  };
}
