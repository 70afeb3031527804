import { z } from 'zod';

const capabilityTag = z.string().trim().min(1).max(200).transform((s) => s.toLowerCase());
const capabilityList = z.array(capabilityTag).max(500);

/** A standalone agent announcing itself; repeated as its heartbeat. */
export const registrationSchema = z
  .object({
    capabilities: z.union([
      capabilityList,
      // v1 personas carry a comma-separated list; accept the same text here, under the same rules.
      z
        .string()
        .max(10_000)
        .transform((s) => s.split(',').filter((t) => t.trim() !== ''))
        .pipe(capabilityList),
    ]),
    status: z.enum(['ready', 'busy', 'sleeping', 'degraded', 'stopped']).default('ready'),
    max_concurrent: z.number().int().positive().max(100_000).nullable().optional(),
  })
  .strict();
