import type { AssignmentEvent, TaskEvent } from '../client/index.js';
import type { CommandContext } from './program.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'timeout']);

function assignmentLine(event: AssignmentEvent): string {
  const at = new Date().toISOString();
  if (event.type === 'assigned') {
    const t = event.task;
    return `${at}  ${event.id.padEnd(8)}  assigned    ${t.id}  attempt ${t.attempt}  [${t.scope}] ${t.title}`;
  }
  return `${at}  ${event.id.padEnd(8)}  ${event.type.padEnd(10)}  ${event.taskId}  attempt ${event.attempt ?? '-'}`;
}

/**
 * `tail --agent`: the agent's assignment stream, the same one its SDK holds (so what an operator
 * sees is what the agent hears), resumed across lost connections; until interrupted. One JSON
 * object per line with --json.
 */
export async function tailAgent(ctx: CommandContext, agent: string, from: string | undefined): Promise<void> {
  const subscription = ctx.client.subscribe(agent, {
    lastEventId: from,
    onReconnect: (error, retryInMs) => console.error(`dispatch: stream lost (${error instanceof Error ? error.message : String(error)}); reconnecting in ${Math.round(retryInMs)} ms`),
  });
  const stop = () => subscription.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  for await (const event of subscription) console.log(ctx.json ? JSON.stringify(event) : assignmentLine(event));
}

/**
 * `tail --task`: the task's audit trail, polled (a task has no stream of its own), new events as
 * they are written, until the task finishes.
 */
export async function tailTask(ctx: CommandContext, id: string, intervalMs: number): Promise<void> {
  const printed = new Set<string>();
  for (;;) {
    const events: TaskEvent[] = await ctx.client.tasks.events(id);
    for (const e of events) {
      if (printed.has(String(e.id))) continue;
      printed.add(String(e.id));
      console.log(ctx.json ? JSON.stringify(e) : `${e.created_at}  ${e.event.padEnd(10)}  ${e.agent_id ?? '-'}  attempt ${e.attempt ?? '-'}  ${JSON.stringify(e.payload)}`);
    }
    if (TERMINAL.has((await ctx.client.tasks.get(id)).status)) return;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
