import { z } from 'zod';
import { createJsonHttpClient, type IntegrationClientOptions } from '../http-client.js';
import { warrenAgentListSchema, warrenAgentSchema, type WarrenAgent } from './warren.schemas.js';

export type { WarrenAgent } from './warren.schemas.js';

/** Warren's admin API, as far as Dispatch uses it. Every method throws IntegrationError. */
export interface WarrenClient {
  /** `GET /admin/agents`: every agent Warren manages, in one call. */
  listAgents(signal?: AbortSignal): Promise<WarrenAgent[]>;
  /** `GET /admin/agents/:name`; `null` when Warren does not know the agent (404). */
  getAgent(name: string, signal?: AbortSignal): Promise<WarrenAgent | null>;
  /**
   * `POST /admin/agents/:name/wake`. Resolves once Warren has accepted the request, not when the
   * agent is up; the answer's `{name, status}` is returned when Warren sends one.
   */
  wakeAgent(name: string, signal?: AbortSignal): Promise<WarrenAgent | null>;
}

// The wake answer is not part of the contract: use it when it is an agent, ignore it otherwise.
const wakeAnswerSchema = z.unknown().transform((body): WarrenAgent | null => {
  const parsed = warrenAgentSchema.safeParse(body);
  return parsed.success ? parsed.data : null;
});

function agentPath(name: string): string {
  return `/admin/agents/${encodeURIComponent(name)}`;
}

/** A Warren client on `options.baseUrl` (Warren's admin port). */
export function createWarrenClient(options: IntegrationClientOptions): WarrenClient {
  const http = createJsonHttpClient('warren', options);
  return {
    async listAgents(signal) {
      const agents = await http.request({ method: 'GET', path: '/admin/agents', schema: warrenAgentListSchema, signal });
      return agents ?? [];
    },
    async getAgent(name, signal) {
      return await http.request({ method: 'GET', path: agentPath(name), schema: warrenAgentSchema, signal, nullOn: [404] });
    },
    async wakeAgent(name, signal) {
      // Retrying a wake is safe: waking an agent that is already starting or up changes nothing.
      return await http.request({
        method: 'POST',
        path: `${agentPath(name)}/wake`,
        schema: wakeAnswerSchema,
        signal,
        answerOptional: true,
      });
    },
  };
}
