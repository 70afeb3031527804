import { BackgroundService } from '../background/service.js';
import { DispatchError } from '../domain/errors.js';
import type { Logger } from '../observability/logger.js';
import { submitTask, type TaskIntake } from '../tasks/task.service.js';
import { planDue } from './cron.js';
import { advanceSchedule, anyScheduleDue, claimDueSchedules } from './schedule.queries.js';

export interface ScheduleRunnerOptions {
  /** How often to look for due schedules: how late after its time an occurrence's task can be. */
  intervalMs: number;
  /** Occurrences older than this when seen were missed (every replica down): catch_up decides. */
  lateAfterMs: number;
  /** Schedules fired per transaction. */
  batchSize: number;
}

/** The Idempotency-Key of an occurrence's task: one task per (schedule, occurrence), ever. */
export const occurrenceKey = (scheduleId: string, occurrence: Date) => `schedule:${scheduleId}@${occurrence.toISOString()}`;

/**
 * Fires due schedules, on every replica. A poll that finds none due is one statement, no
 * transaction. Each batch is one transaction: claim due schedules (FOR UPDATE SKIP LOCKED: a
 * schedule another replica is firing is passed over), create their tasks through submitTask (the
 * one way in), advance next_run_at. A replica killed mid-batch rolls all of it back; the next one
 * to look fires it. The occurrence's Idempotency-Key makes a second task for it impossible even so.
 */
export class ScheduleRunner extends BackgroundService<number> {
  constructor(
    private readonly intake: TaskIntake,
    private readonly options: ScheduleRunnerOptions,
    logger: Logger,
  ) {
    super('schedule runner', { intervalMs: options.intervalMs }, logger);
  }

  /** Fires every due schedule; returns how many tasks were created. */
  async runOnce(): Promise<number> {
    if (!(await anyScheduleDue(this.intake.db))) return 0;
    let created = 0;
    for (;;) {
      const { fired, tasks } = await this.intake.db.transaction().execute(async (tx) => {
        const due = await claimDueSchedules(tx, this.options.batchSize);
        let tasks = 0;
        for (const schedule of due) {
          const plan = planDue({ ...schedule, next_run_at: schedule.next_run_at! }, schedule.now, this.options.lateAfterMs);
          let last: { at: Date; task: string } | null = null;
          let error: string | null = null;
          for (const occurrence of plan.create) {
            const body = JSON.stringify({ ...(schedule.template as object), requester: schedule.owner });
            try {
              const outcome = await submitTask({ ...this.intake, db: tx }, body, { idempotencyKey: occurrenceKey(schedule.id, occurrence) });
              last = { at: occurrence, task: outcome.task.id };
              if (!outcome.replayed) tasks++;
            } catch (failure) {
              // A template refused now (its scope's rules changed): recorded on the schedule, and
              // the occurrence is passed; anything else rolls the batch back for the next pass.
              if (!(failure instanceof DispatchError)) throw failure;
              error = failure.message;
            }
          }
          await advanceSchedule(tx, schedule.id, { next_run_at: plan.next, last_run_at: last?.at ?? null, last_task_id: last?.task ?? null, last_error: error });
        }
        return { fired: due.length, tasks };
      });
      created += tasks;
      if (fired < this.options.batchSize) return created;
    }
  }
}
