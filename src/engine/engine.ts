// The engine: the process operations of the public API (src/engine/operations/), composed over
// one context. Knows nothing of HTTP, piscina or pg-boss.
import type { Logger } from '../config/logger.ts';
import type { Publish } from '../db/events.ts';
import type { Pool } from '../db/pool.ts';
import type { ListQuery } from '../db/process-list.ts';
import type { Actor } from './actor.ts';
import type { Dispatcher, ScheduledStart } from './dispatch.ts';
import { DEFAULT_FORM_TIMEOUT_MS } from './forms.ts';
import { describeWorkflow, type Registry } from './registry.ts';
import {
  abortProcess,
  deleteTask,
  engineStatus,
  resumeAllTasks,
  setGlobalLock,
  setNote,
} from './operations/admin.ts';
import { answerCallback, callbackProgress } from './operations/callbacks.ts';
import { createEngineContext } from './operations/context.ts';
import { skipStep } from './operations/repairs.ts';
import { resumeProcess } from './operations/resumes.ts';
import { createStartBatcher, startProcess, startScheduled } from './operations/starts.ts';
import { getProcess, listProcessesOf, statusCountsOf, stepStateOf } from './operations/view.ts';

export interface EngineOptions {
  pool: Pool;
  /**
   * The pool of the reads (a process, the list, the counts, the engine status), default `pool`:
   * one of their own keeps them answering while writes wait on a locked row.
   */
  readPool?: Pool;
  registry: Registry;
  dispatcher: Dispatcher;
  logger: Logger;
  /** Where the events of committed changes go (after their commit). */
  publish: Publish;
  /** Largest state as JSON an input may lead to (400 `state_too_large`). Default 16 MiB. */
  maxStateBytes?: number;
  /**
   * How long one evaluation of a form (its page functions and refinements, which may look things
   * up) may take: 504 `form_timeout` past it. Default 5000 ms.
   */
  formTimeoutMs?: number;
}

export type Engine = ReturnType<typeof createEngine>;

/** The process operations of the public API; knows nothing of HTTP, piscina or pg-boss. */
export function createEngine({
  maxStateBytes = 16 * 1024 * 1024,
  formTimeoutMs = DEFAULT_FORM_TIMEOUT_MS,
  ...deps
}: EngineOptions) {
  const ctx = createEngineContext({ ...deps, maxStateBytes, forms: { timeoutMs: formTimeoutMs } });
  const starts = createStartBatcher(ctx);
  return {
    registry: ctx.registry,
    /** How forms are evaluated (their time limit). */
    forms: ctx.forms,

    /** A workflow with its start form's first page (404 `workflow_not_found`, 504 `form_timeout`). */
    describeWorkflow: (name: string) => describeWorkflow(ctx.registry.require(name), ctx.forms),
    /** Every workflow, by name, described. */
    describeWorkflows: () =>
      Promise.all(ctx.registry.list().map((def) => describeWorkflow(def, ctx.forms))),

    startProcess: (workflowName: string, body: unknown, actor: Actor) =>
      startProcess(ctx, starts, workflowName, body, actor),
    startScheduled: (tick: ScheduledStart) => startScheduled(ctx, tick),

    resumeProcess: (id: string, body: unknown, actor: Actor) => resumeProcess(ctx, id, body, actor),
    skipStep: (id: string, actor: Actor) => skipStep(ctx, id, actor),

    answerCallback: (id: string, token: string, payload: unknown) =>
      answerCallback(ctx, id, token, payload),
    callbackProgress: (id: string, token: string, progress: unknown) =>
      callbackProgress(ctx, id, token, progress),

    resumeAllTasks: (actor: Actor) => resumeAllTasks(ctx, actor),
    deleteTask: (id: string, actor: Actor) => deleteTask(ctx, id, actor),
    setNote: (id: string, note: string | null) => setNote(ctx, id, note),
    abortProcess: (id: string, actor: Actor) => abortProcess(ctx, id, actor),

    getProcess: (id: string, opts?: { states?: boolean }) => getProcess(ctx, id, opts),
    stepState: (id: string, stepId?: number) => stepStateOf(ctx, id, stepId),

    setGlobalLock: (globalLock: boolean) => setGlobalLock(ctx, globalLock),
    engineStatus: () => engineStatus(ctx),

    listProcesses: (q: ListQuery) => listProcessesOf(ctx, q),
    statusCounts: () => statusCountsOf(ctx),
  };
}
