import { createJsonHttpClient, type IntegrationClientOptions } from '../http-client.js';
import { personaListSchema, type Persona } from './promptforge.schemas.js';

export type { Persona } from './promptforge.schemas.js';

/** PromptForge's persona API, as far as Dispatch uses it. Every method throws IntegrationError. */
export interface PromptForgeClient {
  /** `GET /api/v1/personas`: every persona with its capabilities, in one call. */
  listPersonas(signal?: AbortSignal): Promise<Persona[]>;
}

/** A PromptForge client on `options.baseUrl`; the token is sent as a bearer token when set. */
export function createPromptForgeClient(options: IntegrationClientOptions): PromptForgeClient {
  const http = createJsonHttpClient('promptforge', options);
  return {
    async listPersonas(signal) {
      const personas = await http.request({ method: 'GET', path: '/api/v1/personas', schema: personaListSchema, signal });
      return personas ?? [];
    },
  };
}
