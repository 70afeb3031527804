import { z } from 'zod';

/** Agent ids appear in headers, paths and SQL: printable, no whitespace, bounded. */
export const agentIdSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

/** Who is calling: the X-Agent-ID, and whether the admin token was presented. */
export interface Caller {
  agent: string;
  admin: boolean;
}
