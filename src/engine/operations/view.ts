// The process view: one process with its steps, form, callback, locks and children; the list
// and the status counts.
import { withSnapshot } from '../../db/pool.ts';
import { getCallbacks } from '../../db/callbacks.ts';
import { childSummaries } from '../../db/children.ts';
import { locksOf } from '../../db/locks.ts';
import { getStepRows, type StepRow } from '../../db/processes.ts';
import { listProcesses, statusCounts, type ListQuery } from '../../db/process-list.ts';
import { getStepState, getStepSummaries } from '../../db/step-states.ts';
import { NotFoundError, TimeoutError, ValidationError } from '../errors.ts';
import { firstPage } from '../forms.ts';
import { callbackPath } from '../runner.ts';
import type { State } from '../types.ts';
import type { EngineContext } from './context.ts';

/** Keys whose value differs from the previous snapshot. */
function stateDelta(prev: State, next: State): State {
  const delta: State = {};
  for (const [k, v] of Object.entries(next)) {
    if (JSON.stringify(prev[k]) !== JSON.stringify(v)) delta[k] = v;
  }
  return delta;
}

/** A step row's state and what it changed, or 400 when the process has no step with this id. */
export async function stepStateOf(ctx: EngineContext, id: string, stepId: number | undefined) {
  const pool = ctx.readPool;
  if (stepId === undefined) {
    const row = await ctx.requireProcess(id, pool);
    return { stepId: null, state: row.currentState, stateDelta: null };
  }
  const [exists, found] = await Promise.all([
    ctx.requireProcess(id, pool).then(() => true),
    getStepState(pool, id, stepId),
  ]);
  if (exists && !found) {
    throw new NotFoundError('step_not_found', `Process ${id} has no step ${stepId}`);
  }
  return { stepId, state: found!.state, stateDelta: stateDelta(found!.previous, found!.state) };
}

/**
 * One process with its steps. `states: false`: the steps without their states and deltas, and no
 * `currentState` (the page reads a step's state when it is opened: GET …/state?step=).
 */
export async function getProcess(ctx: EngineContext, id: string, opts: { states?: boolean } = {}) {
  const pool = ctx.readPool;
  const withStates = opts.states !== false;
  // One snapshot: a step committed between two separate reads would show a process whose
  // steps do not match its status.
  const [row, stepRows] = await withSnapshot(pool, (tx) =>
    Promise.all([
      ctx.requireProcess(id, tx),
      withStates ? getStepRows(tx, id) : getStepSummaries(tx, id),
    ]),
  );
  const def = ctx.registry.get(row.workflowName);
  const stepDef = def?.steps[row.stepIndex];
  let prev: State = {};
  const steps = withStates
    ? (stepRows as StepRow[]).map((s) => {
        const out = { ...s, stateDelta: stateDelta(prev, s.state) };
        prev = s.state;
        return out;
      })
    : stepRows;
  // A form built from the current state: its first page (the others follow from the answers),
  // within the form's time limit (a page may be built from a lookup). A form that cannot be
  // built now (a slow or failing lookup) does not hide the process: it says why instead.
  const form =
    row.status === 'suspended' && stepDef?.kind === 'input'
      ? await firstPage(stepDef.pages, row.currentState, `step ${stepDef.name}`, ctx.forms).then(
          (schema) => ({ form: schema, formPages: stepDef.pages.length }),
          (err: unknown) => {
            if (!(err instanceof TimeoutError || err instanceof ValidationError)) throw err;
            return {
              formPages: stepDef.pages.length,
              formError: { code: err.code, message: err.message },
            };
          },
        )
      : {};
  const [latest] = await getCallbacks(pool, id);
  const callbackUrl = row.currentState.callbackUrl;
  const callback = latest && {
    status: latest.status,
    path: callbackPath(id, '<token>'),
    ...(typeof callbackUrl === 'string' ? { url: callbackUrl } : {}),
    createdAt: latest.createdAt,
    expiresAt: latest.expiresAt,
    resolvedAt: latest.resolvedAt,
    progress: latest.progress,
    progressAt: latest.progressAt,
  };
  const locks = def?.lockKeys ? { locks: await locksOf(pool, id) } : {};
  // A parent lists the children it started (subProcesses), with where each stands.
  const kids = def?.steps.some((st) => st.kind === 'children')
    ? { children: await childSummaries(pool, id) }
    : {};
  const { currentState, ...fields } = row;
  return {
    ...fields,
    ...(withStates ? { currentState } : {}),
    steps,
    ...form,
    ...(callback ? { callback } : {}),
    ...locks,
    ...kids,
  };
}

export const listProcessesOf = (ctx: EngineContext, q: ListQuery) => listProcesses(ctx.readPool, q);
export const statusCountsOf = (ctx: EngineContext) => statusCounts(ctx.readPool);
