import { z } from 'zod';
import { AGENT_STATUSES, TASK_STATUSES } from '../db/columns.js';

const EXCLUSIONS = ['no_capability', 'drained', 'stopped', 'degraded', 'unknown', 'starting', 'at_limit', 'cooling_down', 'not_free_at_lock'] as const;

const OUTCOMES = ['won', 'lower_score', 'tie_break', 'avoided', ...EXCLUSIONS] as const;

/** One capable agent in a placement decision: its score and why it won or lost (a `CandidateVerdict`). */
const candidateSchema = z
  .object({
    agent: z.string(),
    score: z.number(),
    status: z.enum(AGENT_STATUSES),
    active_tasks: z.number().int(),
    max_concurrent: z.number().int(),
    outcome: z
      .enum(OUTCOMES)
      .describe('won, lower_score, tie_break (same score, lost on load or recency), avoided (failed it last), or why it was filtered out'),
  })
  .meta({ id: 'PlacementCandidate' });

/** Shown to callers who are not observers or admins: their own entry, the others only counted. */
const otherCandidates = z.number().int().optional().describe('callers who are not observers or admins see only their own candidate entry; the others are counted here');

/** A controlled scope's limits and usage as the assignment batch read them, before this task. */
const scopeLimitsSchema = z
  .object({
    max_running: z.number().int().nullable(),
    running_before: z.number().int(),
    max_starts_per_minute: z.number().int().nullable(),
    starts_before: z.number().int().nullable().describe('null when the scope has no start rate limit'),
  })
  .meta({ id: 'PlacementScopeLimits' });

/** The decision recorded when a task was assigned (see `placementRecord`). */
export const placementRecordSchema = z
  .object({
    decided_at: z.iso.datetime(),
    effective_priority: z
      .number()
      .int()
      .min(1)
      .max(5)
      .optional()
      .describe('the priority after aging when the task was placed (absent from decisions recorded before aging existed)'),
    winner: z.string().nullable(),
    score: z.number(),
    considered: z.number().int(),
    candidates: z
      .array(candidateSchema)
      .describe('the first candidates in rank order, as many as assignment.recorded_candidates (default 3; 10 before it existed): the winner first, or second behind an agent passed over because it failed the task last'),
    outcomes: z
      .partialRecord(z.enum(OUTCOMES), z.number().int())
      .optional()
      .describe('how many of the considered agents had each outcome, listed or not (absent from decisions recorded before it existed)'),
    other_candidates: otherCandidates,
    without_capability: z.number().int(),
    scope_limits: scopeLimitsSchema.optional(),
  })
  .meta({ id: 'PlacementRecord' });
export type PlacementRecordJson = z.infer<typeof placementRecordSchema>;

/** GET /api/v1/tasks/{id}/placement: the recorded decision of a placed task, or why a pending one waits. */
export const placementJsonSchema = z
  .union([
    z.object({
      task_id: z.uuid(),
      status: z.enum(TASK_STATUSES.filter((s) => s !== 'pending' && s !== 'waiting') as [string, ...string[]]),
      assignee: z.string().nullable(),
      attempt: z.number().int(),
      decision: placementRecordSchema.nullable(),
    }),
    z.object({
      task_id: z.uuid(),
      status: z.literal('waiting'),
      assignee: z.string().nullable(),
      attempt: z.number().int(),
      waiting_because: z.array(z.string()).describe('the dependencies it waits for'),
      decision: placementRecordSchema.nullable().describe('the last decision, if it was placed before (a requeued task)'),
    }),
    z.object({
      task_id: z.uuid(),
      status: z.literal('pending'),
      priority: z.number().int().min(1).max(5),
      effective_priority: z.number().int().min(1).max(5).describe('the priority after aging: what the next assignment batch ranks it by'),
      waiting_because: z
        .array(z.string())
        .describe('a paused scope or one at its limits, a run_at or retry backoff, no capable or free agent, or eligible now; and when it expires (start_by)'),
      unmatched_at: z.iso.datetime().nullable(),
      candidates: z.array(candidateSchema),
      other_candidates: otherCandidates,
      without_capability: z.number().int(),
      last_decision: placementRecordSchema.nullable(),
    }),
  ])
  .meta({ id: 'Placement' });
