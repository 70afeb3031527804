import { FakeHttpServer, type FakeReply } from './fake-http-server.js';

export type { FailureMode, RecordedCall } from './fake-http-server.js';

export interface FakePersona {
  name: string;
  /** Joined with ", " into the `capabilities` section; a string is sent as is. */
  capabilities: string[] | string;
  /** Sent as the `max_concurrent` section when given. */
  maxConcurrent?: number | string;
  /** Further sections, sent after the others. */
  sections?: { id: string; content: string }[];
}

export interface FakePromptForgeOptions {
  token?: string;
  personas?: FakePersona[];
}

/** PromptForge's `GET /api/v1/personas` on loopback, personas set from the test. */
export class FakePromptForge extends FakeHttpServer {
  private readonly personas = new Map<string, FakePersona>();

  private constructor(options: FakePromptForgeOptions) {
    super(options.token);
    for (const persona of options.personas ?? []) this.personas.set(persona.name, persona);
  }

  static async start(options: FakePromptForgeOptions = {}): Promise<FakePromptForge> {
    const fake = new FakePromptForge(options);
    await fake.listen();
    return fake;
  }

  setPersona(persona: FakePersona): void {
    this.personas.set(persona.name, persona);
  }

  removePersona(name: string): void {
    this.personas.delete(name);
  }

  protected route(method: string, path: string): FakeReply {
    if (method !== 'GET' || path !== '/api/v1/personas') return { status: 404, body: { error: 'not found' } };
    const body = [...this.personas.values()].map((persona, index) => {
      const sections = [
        { id: 'system_prompt', content: `You are ${persona.name}.` },
        {
          id: 'capabilities',
          content: Array.isArray(persona.capabilities) ? persona.capabilities.join(', ') : persona.capabilities,
        },
      ];
      if (persona.maxConcurrent !== undefined) sections.push({ id: 'max_concurrent', content: String(persona.maxConcurrent) });
      sections.push(...(persona.sections ?? []));
      return { id: `persona-${index + 1}`, name: persona.name, sections };
    });
    return { status: 200, body };
  }
}
