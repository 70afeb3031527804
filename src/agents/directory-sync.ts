import { BackgroundService } from '../background/service.js';
import { OutageLog } from '../background/outage-log.js';
import type { DispatchConfig } from '../config/config.js';
import type { Db } from '../db/database.js';
import type { AgentStatus } from '../db/columns.js';
import { IntegrationError } from '../integrations/http-client.js';
import { createPromptForgeClient, type Persona, type PromptForgeClient } from '../integrations/promptforge/promptforge.client.js';
import { createWarrenClient, type WarrenClient } from '../integrations/warren/warren.client.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import {
  applyWarrenStatuses,
  retireMissingWarrenAgents,
  upsertWarrenAgents,
  type AgentChange,
  type DesiredAgent,
} from './directory.queries.js';

export { applyAgentStatus, type AgentChange } from './directory.queries.js';

export interface DirectorySyncOptions {
  db: Db;
  warren: Pick<WarrenClient, 'listAgents'>;
  promptforge: PromptForgeClient;
  logger: Logger;
  /** How often agent states are read from Warren (one `GET /admin/agents` per sync). */
  stateTtlMs: number;
  /** How long the persona list is reused before PromptForge is asked again. */
  personaTtlMs: number;
  /**
   * How long Warren may be unreachable before its agents are marked unknown. Until then the last
   * statuses stand (a blip must not stall every task); after it, tasks wait rather than go to an
   * agent whose state nobody knows. Default 3 x stateTtlMs.
   */
  warrenGraceMs?: number;
  /** See UpsertOptions.seenRefreshMs. Default 15 s: half the standalone heartbeat window. */
  seenRefreshMs?: number;
  /** Called after each sync that changed rows (status, capabilities or limit), after commit. */
  onChange?: (changes: AgentChange[]) => void | Promise<void>;
  /** Milliseconds clock, injectable for tests. */
  now?: () => number;
}

/** Where this sync's data came from, for tests and the debug log. */
export interface SyncResult {
  /** fresh: fetched now; cached: within the TTL or kept through an outage; none: never loaded. */
  personas: 'fresh' | 'cached' | 'none';
  /** fresh: statuses written; kept: Warren failed, still in grace; expired: agents marked unknown. */
  warren: 'fresh' | 'kept' | 'expired';
  changes: AgentChange[];
}

const DEFAULT_SEEN_REFRESH_MS = 15_000;

/**
 * Keeps dispatch_agents in step with PromptForge (who exists, with which capabilities and limit)
 * and Warren (in which state), so that assignment reads nothing but the database. One Warren call
 * per sync, one PromptForge call per persona TTL, whatever the number of tasks.
 */
export class DirectorySync extends BackgroundService<SyncResult> {
  private readonly now: () => number;
  private readonly warrenGraceMs: number;
  private readonly seenRefreshMs: number;
  private readonly warrenOutage: OutageLog;
  private readonly forgeOutage: OutageLog;

  private personas: Persona[] | null = null;
  private personasDueAt = 0;
  private personaFailures = 0;
  private firstSyncAt: number | null = null;
  private warrenOkAt: number | null = null;
  private warrenExpiredLogged = false;

  private inFlight: Promise<SyncResult> | null = null;
  private abort = new AbortController();

  /** Once started, syncs now, then every stateTtlMs after the end of the last sync. */
  constructor(private readonly options: DirectorySyncOptions) {
    const now = options.now ?? Date.now;
    // A failed sync is a database failure: integration failures are absorbed below.
    super(
      'directory sync',
      { intervalMs: options.stateTtlMs, runAtStart: true, dependency: 'database', failureMessage: 'database unavailable: agent directory not synced until it answers' },
      options.logger,
      now,
    );
    this.now = now;
    this.warrenGraceMs = options.warrenGraceMs ?? 3 * options.stateTtlMs;
    this.seenRefreshMs = options.seenRefreshMs ?? DEFAULT_SEEN_REFRESH_MS;
    this.warrenOutage = new OutageLog(options.logger, 'warren', now);
    this.forgeOutage = new OutageLog(options.logger, 'promptforge', now);
  }

  /** Stops the loop, cancels calls in flight and waits for a sync in progress to finish. */
  override async stop(): Promise<void> {
    const stopped = super.stop();
    this.abort.abort();
    await stopped;
    await this.inFlight?.catch(() => undefined);
    // A later runOnce() (or start()) runs normally again.
    this.abort = new AbortController();
  }

  /** Forget the persona cache so the next sync asks PromptForge (e.g. after a persona change). */
  invalidatePersonas(): void {
    this.personasDueAt = 0;
  }

  /**
   * One sync: Warren's states (and PromptForge's personas when due) into dispatch_agents.
   * Integration failures are absorbed (logged once, data kept); only a database error throws.
   * Concurrent callers share the sync in progress.
   */
  runOnce(): Promise<SyncResult> {
    this.inFlight ??= this.runSync().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async runSync(): Promise<SyncResult> {
    const startedAt = this.now();
    this.firstSyncAt ??= startedAt;
    const signal = this.abort.signal;
    const [personas, statuses] = await Promise.all([this.loadPersonas(startedAt, signal), this.loadStatuses(signal)]);
    if (signal.aborted) {
      // Shutting down: whatever was fetched may be partial, and the pool may be closing.
      return { personas: personas.source, warren: 'kept', changes: [] };
    }

    const now = this.now();
    let warren: SyncResult['warren'];
    if (statuses) {
      warren = 'fresh';
      this.warrenOkAt = now;
      this.warrenExpiredLogged = false;
    } else if (now - (this.warrenOkAt ?? this.firstSyncAt) <= this.warrenGraceMs) {
      warren = 'kept';
    } else {
      warren = 'expired';
      if (!this.warrenExpiredLogged) {
        this.warrenExpiredLogged = true;
        this.options.logger.warn(
          { service: 'warren', graceMs: this.warrenGraceMs },
          'warren unreachable past the grace window: its agents are marked unknown and tasks wait',
        );
      }
    }
    const changes = await this.write(personas.list, warren === 'fresh' ? statuses : null, warren === 'kept');
    if (changes.length > 0) await this.notify(changes);
    return { personas: personas.source, warren, changes };
  }

  /** The persona list: from PromptForge when due, else the cache (also kept through an outage). */
  private async loadPersonas(now: number, signal: AbortSignal): Promise<{ list: Persona[] | null; source: SyncResult['personas'] }> {
    if (this.personas !== null && now < this.personasDueAt) return { list: this.personas, source: 'cached' };
    if (this.personas === null && now < this.personasDueAt) return { list: null, source: 'none' };
    try {
      const list = await this.options.promptforge.listPersonas(signal);
      this.personas = list;
      this.personaFailures = 0;
      this.personasDueAt = this.now() + this.options.personaTtlMs;
      this.forgeOutage.recovered('promptforge recovered');
      return { list, source: 'fresh' };
    } catch (error) {
      if (!isAbort(error)) {
        // Retry sooner than the TTL, backing off from one state interval up to the TTL, so a dead
        // PromptForge does not slow every sync by its timeouts and retries.
        this.personaFailures += 1;
        const backoff = Math.min(this.options.personaTtlMs, this.options.stateTtlMs * 2 ** (this.personaFailures - 1));
        this.personasDueAt = this.now() + backoff;
        this.forgeOutage.failed(error, 'promptforge unavailable: last known personas kept until it answers');
      }
      return { list: this.personas, source: this.personas === null ? 'none' : 'cached' };
    }
  }

  /** Warren's states by agent name, or null when Warren could not be read. */
  private async loadStatuses(signal: AbortSignal): Promise<Map<string, AgentStatus> | null> {
    try {
      const agents = await this.options.warren.listAgents(signal);
      this.warrenOutage.recovered('warren recovered');
      return new Map(agents.map((agent) => [agent.name, agent.status]));
    } catch (error) {
      if (!isAbort(error)) this.warrenOutage.failed(error, 'warren unavailable: agent statuses kept until the grace window ends');
      return null;
    }
  }

  /**
   * Writes the directory in one transaction. `statuses` null means "no fresh Warren data": keep
   * the statuses when `keepStatus`, else mark every Warren-sourced agent unknown.
   */
  private async write(personas: Persona[] | null, statuses: Map<string, AgentStatus> | null, keepStatus: boolean): Promise<AgentChange[]> {
    return await this.options.db.transaction().execute(async (trx) => {
      if (personas === null) {
        // No persona list yet (PromptForge down since start-up): refresh the statuses of the
        // agents already in the table, which still carry their last known capabilities.
        if (keepStatus) return [];
        return await applyWarrenStatuses(trx, statuses ?? new Map(), this.seenRefreshMs);
      }
      const desired = desiredAgents(personas, statuses);
      const upserted = await upsertWarrenAgents(trx, desired, { keepStatus, seenRefreshMs: this.seenRefreshMs });
      const retired = await retireMissingWarrenAgents(
        trx,
        desired.map((agent) => agent.name),
      );
      return [...upserted, ...retired];
    });
  }

  private async notify(changes: AgentChange[]): Promise<void> {
    this.options.logger.debug({ changes }, 'agent directory changed');
    if (!this.options.onChange) return;
    try {
      await this.options.onChange(changes);
    } catch (error) {
      this.options.logger.error({ err: error }, 'agent directory change handler failed');
    }
  }
}

function isAbort(error: unknown): boolean {
  return error instanceof IntegrationError && error.reason === 'aborted';
}

/**
 * Personas joined with Warren's states by name. A persona Warren does not list is 'unknown'; an
 * agent Warren lists without a persona is ignored (it has no capabilities to assign by). When the
 * same name appears twice, the last persona wins, as one statement cannot upsert a row twice.
 */
export function desiredAgents(personas: readonly Persona[], statuses: ReadonlyMap<string, AgentStatus> | null): DesiredAgent[] {
  const byName = new Map<string, DesiredAgent>();
  for (const persona of personas) {
    const status = statuses?.get(persona.name);
    byName.set(persona.name, {
      name: persona.name,
      capabilities: persona.capabilities,
      maxConcurrent: persona.maxConcurrent,
      status: status ?? 'unknown',
      seen: status !== undefined,
    });
  }
  return [...byName.values()];
}

/** Warren mode: both services configured. Otherwise agents register themselves (standalone). */
export function isWarrenMode(config: DispatchConfig): boolean {
  return config.warren.url !== '' && config.promptforge.url !== '';
}

export interface DirectorySyncDependencies {
  db: Db;
  logger: Logger;
  metrics: Pick<Metrics, 'integrationErrors' | 'integrationUp'>;
  fetch?: typeof globalThis.fetch;
  onChange?: DirectorySyncOptions['onChange'];
}

/**
 * The Warren client (also needed for waking agents) and the directory sync for this config, or
 * null in standalone mode. Both clients record the integration metrics on every call.
 */
export function createDirectorySync(
  config: DispatchConfig,
  deps: DirectorySyncDependencies,
): { sync: DirectorySync; warren: WarrenClient; promptforge: PromptForgeClient } | null {
  if (!isWarrenMode(config)) return null;
  const warren = createWarrenClient({
    baseUrl: config.warren.url,
    token: config.warren.token,
    timeoutMs: config.warren.timeout_ms,
    fetch: deps.fetch,
    metrics: deps.metrics,
  });
  const promptforge = createPromptForgeClient({
    baseUrl: config.promptforge.url,
    token: config.promptforge.token,
    timeoutMs: config.promptforge.timeout_ms,
    fetch: deps.fetch,
    metrics: deps.metrics,
  });
  const sync = new DirectorySync({
    db: deps.db,
    warren,
    promptforge,
    logger: deps.logger.child({ component: 'directory-sync' }),
    stateTtlMs: config.warren.state_ttl_ms,
    personaTtlMs: config.promptforge.persona_ttl_ms,
    // One failed tick may take every retry of a hanging Warren (about 3 x timeout): wait longer
    // than that before treating its agents as unknown.
    warrenGraceMs: Math.max(3 * config.warren.state_ttl_ms, 4 * config.warren.timeout_ms),
    onChange: deps.onChange,
  });
  return { sync, warren, promptforge };
}
