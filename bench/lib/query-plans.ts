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
  /** How each watched table was read: "Index Scan using x", "Index Only Scan using y", "Seq Scan". */
  access: string[];
  seqScan: boolean;
  ms: number;
  buffers: number;
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Total Time'?: number;
  'Shared Hit Blocks'?: number;
  'Shared Read Blocks'?: number;
  Plans?: PlanNode[];
}

const SESSION = {
  session_preload_libraries: 'auto_explain',
  'auto_explain.log_min_duration': '0',
  'auto_explain.log_analyze': 'on',
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
        const access: string[] = [];
        readAccess(top, watched, access);
        if (access.length === 0) continue;
        plans.push({
          access,
          seqScan: access.some((a) => a.startsWith('Seq Scan')),
          ms: top['Actual Total Time'] ?? Number.NaN,
          buffers: (top['Shared Hit Blocks'] ?? 0) + (top['Shared Read Blocks'] ?? 0),
        });
      }
      return plans;
    },
  };
}
