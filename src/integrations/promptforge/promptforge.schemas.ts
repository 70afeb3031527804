import { z } from 'zod';

/** What Dispatch takes from a PromptForge persona. `name` is the agent id used with Warren. */
export interface Persona {
  id: string;
  name: string;
  /** Lower-cased, trimmed, de-duplicated and sorted, so an unchanged persona compares equal. */
  capabilities: string[];
  /** Per-agent limit from the optional `max_concurrent` section; null means the configured default. */
  maxConcurrent: number | null;
}

export const CAPABILITIES_SECTION = 'capabilities';
export const MAX_CONCURRENT_SECTION = 'max_concurrent';

// Same bound as a task's scope: a longer tag could never match a task anyway.
const MAX_TAG_LENGTH = 200;
// Far above any real agent, far below int4: a typo such as 30000000000 must not break the upsert.
const MAX_CONCURRENT_LIMIT = 10_000;

/** The `capabilities` section: comma-separated tags, lower-cased, trimmed, empty ones dropped. */
export function parseCapabilities(content: string): string[] {
  const tags = content
    .split(',')
    .map((tag) => tag.trim().toLowerCase())
    .filter((tag) => tag.length > 0 && tag.length <= MAX_TAG_LENGTH);
  return [...new Set(tags)].sort();
}

/**
 * The optional `max_concurrent` section: a positive whole number. Anything else is ignored (the
 * default limit applies) rather than failing the whole persona list over one typo.
 */
export function parseMaxConcurrent(content: string): number | null {
  const trimmed = content.trim();
  if (!/^\d+$/.test(trimmed)) return null;
  const value = Number(trimmed);
  return value >= 1 && value <= MAX_CONCURRENT_LIMIT ? value : null;
}

const sectionSchema = z.object({
  id: z.string(),
  // A section with no content is treated as empty.
  content: z
    .string()
    .nullish()
    .transform((value) => value ?? ''),
});

function sectionContent(sections: readonly { id: string; content: string }[], id: string): string | undefined {
  return sections.find((section) => section.id.trim().toLowerCase() === id)?.content;
}

export const personaSchema = z
  .object({
    // Some stores use numeric ids; Dispatch only ever displays it.
    id: z.union([z.string(), z.number()]).transform(String),
    name: z.string().min(1).max(200),
    // A persona without sections has no capabilities: it is listed but never assigned.
    sections: z.array(sectionSchema).nullish(),
  })
  .transform((persona): Persona => {
    const sections = persona.sections ?? [];
    const capabilities = sectionContent(sections, CAPABILITIES_SECTION);
    const maxConcurrent = sectionContent(sections, MAX_CONCURRENT_SECTION);
    return {
      id: persona.id,
      name: persona.name,
      capabilities: capabilities === undefined ? [] : parseCapabilities(capabilities),
      maxConcurrent: maxConcurrent === undefined ? null : parseMaxConcurrent(maxConcurrent),
    };
  });

/** `GET /api/v1/personas`: a list of personas, or the same list in a `{personas: [...]}` envelope. */
export const personaListSchema = z.union([
  z.array(personaSchema),
  z.object({ personas: z.array(personaSchema) }).transform((body) => body.personas),
]);
