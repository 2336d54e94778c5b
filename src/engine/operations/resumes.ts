// Resumes: a suspended process with its form's input; any other resumable status is a retry
// (repairs.ts).
import type { Queryable } from '../../db/pool.ts';
import { resumeSuspended } from '../../db/resumes.ts';
import { ANONYMOUS, type Actor } from '../actor.ts';
import type { InputStep } from '../dsl.ts';
import { dispatchOf } from '../dispatch.ts';
import { ConflictError, ForbiddenError } from '../errors.ts';
import { parseForm } from '../forms.ts';
import { isIn, RESUMABLE_STATUSES } from '../types.ts';
import {
  asEvents,
  checkHook,
  hookProcess,
  workflowChanged,
  type EngineContext,
} from './context.ts';
import { retryProcess, type ResumeAt } from './repairs.ts';

export async function resumeProcess(
  ctx: EngineContext,
  id: string,
  body: unknown,
  actor: Actor,
): Promise<void> {
  const row = await ctx.requireProcess(id);
  await ctx.requireUnlocked();
  const notResumable = () =>
    new ConflictError('not_resumable', `Process ${id} is ${row.status} and cannot be resumed`, {
      details: { status: row.status },
    });
  // `resumed` is on its way to a runner already: a second resume (two clients racing) gets 409.
  if (!isIn(RESUMABLE_STATUSES, row.status) || row.status === 'resumed') throw notResumable();
  const def = ctx.registeredWorkflow(row);
  const at: ResumeAt = {
    id,
    row,
    def,
    stepDef: def.steps[row.stepIndex],
    actor,
    job: dispatchOf('resume', id, actor.name, row),
    notResumable,
  };
  if (row.status === 'suspended') return answerInput(ctx, at, body);
  return retryProcess(ctx, at, body);
}

/** A suspended process's input step answered with `body`: it goes on, or completes when last. */
async function answerInput(
  ctx: EngineContext,
  { id, row, def, stepDef, actor, job, notResumable }: ResumeAt,
  body: unknown,
): Promise<void> {
  if (stepDef?.kind !== 'input' || stepDef.name !== row.lastStep)
    throw workflowChanged(def, row, stepDef?.name);
  const input = await parseForm(
    stepDef.pages,
    body,
    row.currentState,
    `step ${stepDef.name}`,
    ctx.forms,
  );
  ctx.checkStateSize({ ...row.currentState, ...input });
  if (!mayAnswer(stepDef, actor))
    throw new ForbiddenError(
      'forbidden',
      `Step ${stepDef.name} is assigned to ${stepDef.assignee}; ${actor.name} does not have that role`,
    );
  checkHook(stepDef.authorizeResume ?? def.authorize, {
    user: actor,
    action: 'resume',
    workflow: def.name,
    process: hookProcess(row),
    input,
  });
  const isLast = row.stepIndex === def.steps.length - 1;
  const resumed = async (tx: Queryable) =>
    resumeSuspended(tx, {
      id,
      index: row.stepIndex,
      name: stepDef.name,
      group: stepDef.group,
      input,
      state: { ...row.currentState, ...input },
      user: actor.name,
      nextStatus: isLast ? 'completed' : 'resumed',
    });
  let ok: boolean;
  if (isLast) {
    const events = await resumed(ctx.pool);
    ctx.publish(asEvents(events));
    ok = events !== undefined;
  } else ok = await ctx.makeRunnable(job, resumed);
  if (!ok) await ctx.refused(notResumable());
}

/**
 * Whether `actor` may answer an input step with an assignee (a role): a user whose token carries
 * the role; a token with no roles at all only when the step allows it; anyone when the API runs
 * without authentication (everyone is anonymous: the assignee is shown, not enforced).
 */
function mayAnswer(step: InputStep, actor: Actor): boolean {
  if (!step.assignee || actor === ANONYMOUS) return true;
  if (actor.roles.includes(step.assignee)) return true;
  return actor.roles.length === 0 && step.allowTokensWithoutRoles === true;
}
