import type { TaskEventRow } from '../db/database.js';

/** One agent's hold of a task: from its `assigned` event to the event that ended the attempt. */
export interface Hold {
  agent: string;
  attempt: number | null;
  from: Date;
  until: Date | null;
  /** The event that ended the hold (completed, failed, timeout, reassigned, cancelled...). */
  ended: string | null;
}

/** Events that do not end the holder's attempt. */
const DURING = new Set(['started', 'progress', 'context_updated', 'placement']);

/** Who held the task when, read from its audit events (oldest first). */
export function holdsOf(events: readonly TaskEventRow[]): Hold[] {
  const holds: Hold[] = [];
  let open: Hold | undefined;
  for (const event of events) {
    if (event.event === 'assigned') {
      if (open) Object.assign(open, { until: event.created_at, ended: 'reassigned' });
      open = { agent: event.agent_id ?? '?', attempt: event.attempt, from: event.created_at, until: null, ended: null };
      holds.push(open);
    } else if (open && !DURING.has(event.event)) {
      Object.assign(open, { until: event.created_at, ended: event.event });
      open = undefined;
    }
  }
  return holds;
}
