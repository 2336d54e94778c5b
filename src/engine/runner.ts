// Runs claimed processes step by step under a lease: heartbeats, the steps' outcomes and their
// commits (step-committer.ts), the children of a subProcesses step, the give-back on shutdown.
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from '../config/logger.ts';
import type { Publish } from '../db/events.ts';
import { withTransaction, type Pool } from '../db/pool.ts';
import { failClaimed, heartbeatLeases, releaseLease, type Claim } from '../db/leases.ts';
import type { StepCommit } from '../db/step-commits.ts';
import type { RunnerHooks } from './dispatch.ts';
import { DEFAULT_FORM_TIMEOUT_MS } from './forms.ts';
import { noMetrics, type EngineMetrics } from './metrics.ts';
import { toStepError } from './errors.ts';
import { positionProblem, type Registry } from './registry.ts';
import { createStepCommitter } from './step-committer.ts';
import type { StepPool } from './step-pool.ts';
import { ownOutcome } from './step-kinds.ts';
import { transition, type Outcome } from './transitions.ts';
import type { ProcessStatus, State, StepError } from './types.ts';

/** A callback token: 32 random bytes, base64url (43 characters). Only its SHA-256 is stored. */
export function newCallbackToken(): { token: string; hash: Buffer } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashCallbackToken(token) };
}
export const hashCallbackToken = (token: string): Buffer =>
  createHash('sha256').update(token).digest();
/** The path of a process's callback URL. */
export const callbackPath = (processId: string, token: string) =>
  `/api/processes/${processId}/callback/${token}`;

/** How one `run` ended. */
export type RunResult =
  /** Someone else holds the process, or it is not runnable. */
  | 'not_claimed'
  /** The process stopped in this status. */
  | ProcessStatus
  /** The lease was revoked (abort) or taken over; nothing more was written. */
  | 'lease_lost'
  /** Given back on shutdown, to be continued by any runner. */
  | 'released';

export interface RunnerOptions {
  pool: Pool;
  registry: Registry;
  steps: StepPool;
  leaseSeconds: number;
  logger: Logger;
  /** Where the events of committed changes go (after their commit). */
  publish: Publish;
  /** Step commit statements out at once; more wait and go together (see commit-batcher). Default 3. */
  commitsInFlight?: number;
  /** What the executor does at points of a run (see RunnerHooks, each with its default). */
  hooks?: Partial<RunnerHooks>;
  /** Largest state as JSON; a step whose result exceeds it fails. Default 16 MiB. */
  maxStateBytes?: number;
  /** How long a child's start form may take to evaluate (FORM_TIMEOUT_MS). Default 5000 ms. */
  formTimeoutMs?: number;
  /** Step durations, failures and retries. Default: none. */
  metrics?: EngineMetrics;
}

export interface Runner {
  /**
   * Runs a process claimed elsewhere (in a fetch's transaction, or at insert) for this runner's
   * owner, whose claim has committed and been published.
   */
  runClaimed(claim: Claim): Promise<RunResult>;
  /** Fires the AbortSignal of a step this runner is running for `processId`. */
  abortLocal(processId: string): boolean;
  /** Processes this runner holds right now. */
  active(): string[];
  /**
   * Stops taking new steps: processes mid-way are given back after their current step, or after
   * `timeoutMs` with their step aborted. Idempotent.
   */
  stop(timeoutMs: number): Promise<void>;
}

interface Active {
  controller: AbortController;
  done: Promise<RunResult>;
  /** The lease token of the current claim. */
  leaseToken: string;
}

export function createRunner(opts: RunnerOptions): Runner {
  const { pool, registry, steps, leaseSeconds, logger, publish } = opts;
  const active = new Map<string, Active>();
  const hooks = opts.hooks ?? {};
  const callbackUrl = hooks.callbackUrl ?? callbackPath;
  const metrics = opts.metrics ?? noMetrics;
  const maxStateBytes = opts.maxStateBytes ?? 16 * 1024 * 1024;
  const forms = { timeoutMs: opts.formTimeoutMs ?? DEFAULT_FORM_TIMEOUT_MS };
  const stateTooLarge = (bytes: number): StepError => ({
    outcome: 'failed',
    name: 'StateTooLarge',
    message: `the step's result makes the state ${bytes} bytes of JSON, more than MAX_STATE_BYTES (${maxStateBytes})`,
  });
  /** A callback step's URL, or why there is none (the step fails with it and nothing runs). */
  async function callbackAddress(
    processId: string,
    token: string,
  ): Promise<{ ok: true; url: string } | { ok: false; error: StepError }> {
    try {
      return { ok: true, url: await callbackUrl(processId, token) };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { ok: false, error: { outcome: 'failed', name: 'NoCallbackAddress', message } };
    }
  }
  let stopping = false;
  let stopped: Promise<void> | undefined;

  // One heartbeat for every lease this runner holds: one statement per interval, not one per process.
  let beating = false;
  const beat = setInterval(
    () => {
      if (beating || active.size === 0) return;
      beating = true;
      const leases = [...active].map(([id, a]) => ({ id, leaseToken: a.leaseToken }));
      heartbeatLeases(pool, leases, leaseSeconds)
        .then((lost) => {
          for (const id of lost) active.get(id)?.controller.abort(new Error('lease lost'));
        })
        .catch((err: unknown) => logger.warn('heartbeat failed', { leases: leases.length, err }))
        .finally(() => (beating = false));
    },
    Math.max(200, (leaseSeconds * 1000) / 3),
  );
  beat.unref();

  async function giveBack(claim: Claim): Promise<RunResult> {
    const released = await withTransaction(pool, async (tx) => {
      const event = await releaseLease(tx, claim.id, claim.leaseToken);
      if (event && hooks.requeue) await hooks.requeue(tx, claim.id, claim.createdBy);
      return event;
    });
    publish([released]);
    return released ? 'released' : 'lease_lost';
  }

  const committer = createStepCommitter({
    pool,
    leaseSeconds,
    logger,
    commitsInFlight: opts.commitsInFlight,
    hooks,
  });

  async function execute(claim: Claim, controller: AbortController): Promise<RunResult> {
    const def = registry.get(claim.workflowName);
    const problem = def
      ? positionProblem(def, claim)
      : `workflow ${claim.workflowName} is not registered`;
    if (!def || problem) {
      logger.error('cannot continue process', {
        processId: claim.id,
        workflow: claim.workflowName,
        reason: problem,
      });
      publish([await failClaimed(pool, claim.id, claim.leaseToken, problem ?? 'unknown workflow')]);
      return 'failed';
    }
    let state: State = claim.state;
    // The state as JSON, kept while steps leave it unchanged: a 1 MB state that a step did not
    // touch is not serialised again for its commit.
    let stateJson: string | undefined;
    let index = claim.stepIndex;
    let attempt = claim.attempt;
    const base = {
      id: claim.id,
      leaseToken: claim.leaseToken,
      createdBy: claim.createdBy,
      leaseSeconds,
    };

    for (;;) {
      if (stopping) return giveBack(claim);
      const stepDef = def.steps[index];
      if (!stepDef) {
        // Only reachable when a workflow lost trailing steps after the process cleared them all.
        const reason = `workflow ${def.name} has no step ${index}`;
        publish([await failClaimed(pool, claim.id, claim.leaseToken, reason)]);
        return 'failed';
      }
      const isLast = index === def.steps.length - 1;
      const startedAt = new Date();
      let guard: boolean | Outcome;
      try {
        guard = stepDef.when.every((p) => p(state));
      } catch (err) {
        guard = { kind: 'error', error: toStepError(err) };
      }
      let outcome: Outcome | undefined;
      // Whether a body or action ran (skipped and input steps run nothing).
      let ran = false;
      if (guard === false) outcome = { kind: 'skipped' };
      else if (guard !== true) outcome = guard;
      // A kind that runs no body (input, sleep, subProcesses) has its outcome in step-kinds.ts.
      else outcome = await ownOutcome(stepDef, { pool, registry, claim, index, state, forms });
      if (outcome === undefined) {
        const callback = stepDef.kind === 'callback' ? newCallbackToken() : undefined;
        const address = callback && (await callbackAddress(claim.id, callback.token));
        if (address && !address.ok) outcome = { kind: 'error', error: address.error };
        else {
          ran = true;
          const result = await steps
            .run(
              {
                workflow: def.name,
                index,
                state,
                processId: claim.id,
                attempt,
                callbackUrl: address?.url,
                timeLimitSeconds:
                  'timeLimitSeconds' in stepDef ? stepDef.timeLimitSeconds : undefined,
              },
              controller.signal,
            )
            // After an abort the pool may give up on a step that ignores its signal (its thread
            // is then terminated); a step past its time limit, or one that crashed its thread too
            // often, is a failed outcome (StepTimeout, StepCrashed).
            .catch((err: unknown) => {
              if (controller.signal.aborted) return undefined;
              throw err;
            });
          // Aborted: by the user or a lost lease (nothing to commit), or by shutdown (give it back).
          if (controller.signal.aborted || !result)
            return stopping ? giveBack(claim) : 'lease_lost';
          outcome = !result.ok
            ? { kind: 'error', error: result.error }
            : callback
              ? { kind: 'callback', delta: result.delta, tokenHash: callback.hash }
              : { kind: 'success', delta: result.delta };
        }
      }
      const at = { index, attempt, isLast, state, now: startedAt };
      let next = transition(stepDef, outcome, at);
      let json =
        next.state === state ? (stateJson ??= JSON.stringify(state)) : JSON.stringify(next.state);
      if (json.length > maxStateBytes) {
        // Refused before it is written: the step fails, the state stays as it was.
        next = transition(stepDef, { kind: 'error', error: stateTooLarge(json.length) }, at);
        json = stateJson ??= JSON.stringify(state);
      }
      if (next.state !== state) {
        state = next.state;
        stateJson = json;
      }
      const commit: StepCommit = {
        ...base,
        ...next,
        index,
        name: stepDef.name,
        startedAt,
        stateJson: json,
      };
      const result = await committer.commit(commit);
      if (!result.held) {
        logger.warn('lease lost, step not committed', {
          processId: claim.id,
          workflow: def.name,
          step: stepDef.name,
        });
        return 'lease_lost';
      }
      if (result.events) publish(result.more ? [...result.events, ...result.more] : result.events);
      else publish.missed();
      if (ran) {
        metrics.stepRan(
          def.name,
          stepDef.name,
          commit.stepStatus,
          (Date.now() - +startedAt) / 1000,
        );
        if (commit.retryAt && stepDef.kind === 'retry')
          metrics.retryScheduled(def.name, stepDef.name);
      }
      const due = commit.retryAt ?? commit.callback?.expiresAt;
      if (due) hooks.onDue?.(claim.id, due);
      if (commit.children) hooks.childrenStarted?.(commit.children.map((c) => c.id));
      // The engine was paused: the commit gave the process back before its next step.
      const status =
        (result.events?.[1].status as ProcessStatus | undefined) ?? commit.processStatus;
      if (claim.parentId && (status === 'completed' || status === 'aborted'))
        hooks.childEnded?.(claim.parentId);
      if (status !== 'running') return status;
      index = commit.nextIndex;
      attempt = commit.nextAttempt;
    }
  }

  function runClaimed(claim: Claim): Promise<RunResult> {
    if (active.has(claim.id)) return Promise.resolve('not_claimed');
    if (stopping) return giveBack(claim);
    const controller = new AbortController();
    const done = execute(claim, controller).finally(() => active.delete(claim.id));
    active.set(claim.id, { controller, done, leaseToken: claim.leaseToken });
    return done;
  }

  return {
    runClaimed,
    abortLocal(processId) {
      const a = active.get(processId);
      a?.controller.abort(new Error('process aborted'));
      return a !== undefined;
    },
    active: () => [...active.keys()],
    stop(timeoutMs) {
      stopping = true;
      stopped ??= (async () => {
        const all = () => Promise.allSettled([...active.values()].map((a) => a.done));
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<'timeout'>(
          (r) => (timer = setTimeout(() => r('timeout'), timeoutMs)),
        );
        if ((await Promise.race([all(), timedOut])) === 'timeout') {
          // Steps that outlive the timeout are aborted; their leases are given back.
          const left = [...active.values()];
          for (const a of left) a.controller.abort(new Error('shutting down'));
          await all();
        }
        clearTimeout(timer);
        clearInterval(beat);
      })();
      return stopped;
    },
  };
}
