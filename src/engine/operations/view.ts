// The process view: one process with its steps, form, callback, locks and children; the list
// and the status counts.
import { withSnapshot } from '../../db/pool.ts';
import { getCallbacks } from '../../db/callbacks.ts';
import { childSummaries } from '../../db/children.ts';
import { locksOf } from '../../db/locks.ts';
import { getStepRows, type StepRow } from '../../db/processes.ts';
import { listProcesses, statusCounts, type ListQuery } from '../../db/process-list.ts';
import { TimeoutError, ValidationError } from '../errors.ts';
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

export async function getProcess(ctx: EngineContext, id: string) {
  const pool = ctx.readPool;
  // One snapshot: a step committed between two separate reads would show a process whose
  // steps do not match its status.
  const [row, stepRows] = await withSnapshot(pool, (tx) =>
    Promise.all([ctx.requireProcess(id, tx), getStepRows(tx, id)]),
  );
  const def = ctx.registry.get(row.workflowName);
  const stepDef = def?.steps[row.stepIndex];
  let prev: State = {};
  const steps = stepRows.map((s: StepRow) => {
    const out = { ...s, stateDelta: stateDelta(prev, s.state) };
    prev = s.state;
    return out;
  });
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
  const callback = latest && {
    status: latest.status,
    path: callbackPath(id, '<token>'),
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
  return { ...row, steps, ...form, ...(callback ? { callback } : {}), ...locks, ...kids };
}

export const listProcessesOf = (ctx: EngineContext, q: ListQuery) => listProcesses(ctx.readPool, q);
export const statusCountsOf = (ctx: EngineContext) => statusCounts(ctx.readPool);
