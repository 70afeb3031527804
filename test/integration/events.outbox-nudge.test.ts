import { describe, expect, it } from 'vitest';
import { useDispatchOnNats } from '../helpers/nats-dispatch.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The outbox is polled (src/events/outbox-publisher.ts); events committed by this replica's own
 * requests and assignment batches do not wait for the poll. Here the poll is an hour away, so
 * only that nudge can bring them to NATS within the test.
 */
const env = useDispatchOnNats((url) => ({ hermes: { url, outbox_poll_interval_ms: 3_600_000 } }));

describe('events this replica commits', () => {
  it('reach NATS at once: a request\'s and an assignment batch\'s, with the next poll an hour away', async () => {
    const seen: string[] = [];
    const subscription = env.nc.subscribe('swarm.task.>', { callback: (_error, message) => seen.push(message.subject) });
    try {
      const created = await env.api('POST', '/api/v1/tasks', { body: { title: 'nudged', scope: 'nudge' } });
      expect(created.status).toBe(201);
      const id: string = created.body.id;
      await waitFor(() => seen.includes(`swarm.task.${id}.created`), { what: 'the created event on NATS' });
      // The agent's PUT is a request too: let its nudge pass before the batch assigns.
      expect((await env.api('PUT', '/api/v1/agents/nudge-agent', { agent: 'nudge-agent', body: { capabilities: ['nudge'], status: 'ready' } })).status).toBe(200);
      await waitFor(() => seen.includes(`swarm.task.${id}.assigned`), { what: 'the assigned event on NATS' });
    } finally {
      subscription.unsubscribe();
    }
  });
});
