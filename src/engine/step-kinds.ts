// How a step kind that runs no body of its own reaches its outcome: an input step suspends, a
// sleep waits (or is over, when claimed back from its wait), a subProcesses step starts its
// children (or collects them, when claimed back once they ended). Kinds with a body (step, retry,
// callback) run it on a step thread (runner.ts). What each outcome writes is transitions.ts's.
import { randomUUID } from 'node:crypto';
import { childrenOf, type NewChild } from '../db/children.ts';
import type { Claim } from '../db/leases.ts';
import type { Pool } from '../db/pool.ts';
import type { ChildSpec, StepDef, SubProcessesStep } from './dsl.ts';
import { toStepError } from './errors.ts';
import { parseForm, type FormOptions } from './forms.ts';
import type { Registry } from './registry.ts';
import type { Outcome } from './transitions.ts';
import type { State } from './types.ts';

/** Where the step stands: the claimed process, the step's index and the state it is given. */
export interface StepAt {
  pool: Pool;
  registry: Registry;
  claim: Claim;
  index: number;
  state: State;
  forms: FormOptions;
}

/** The outcome of a step of a kind without a body; undefined: the step runs its body. */
export async function ownOutcome(step: StepDef, at: StepAt): Promise<Outcome | undefined> {
  switch (step.kind) {
    case 'input':
      return { kind: 'suspend' };
    case 'sleep':
      // Claimed back at this very step from its wait: the sleep is over.
      return backFromWaiting(at) ? { kind: 'success', delta: {} } : { kind: 'sleep' };
    case 'children':
      return childrenOutcome(step, at);
    default:
      return undefined;
  }
}

/** Claimed at this step with its last row the waiting one: back from a sleep or from children. */
const backFromWaiting = ({ claim, index }: StepAt) =>
  index === claim.stepIndex && claim.lastRowIndex === index && claim.lastRowStatus === 'waiting';

/**
 * A subProcesses step: back from waiting for its children, their outcomes; else the children to
 * start, each checked against its workflow's start form. An aborted child, or a child that
 * cannot start, fails the step.
 */
async function childrenOutcome(step: SubProcessesStep, at: StepAt): Promise<Outcome> {
  const { pool, registry, claim, index, state, forms } = at;
  const fail = (message: string): Outcome => ({
    kind: 'error',
    error: { outcome: 'failed', name: 'ChildProcessError', message },
  });
  if (backFromWaiting(at)) {
    const children = await childrenOf(pool, claim.id, index);
    const aborted = children.find((c) => c.status === 'aborted');
    if (aborted) return fail(`child ${aborted.id} (${aborted.workflow}) was aborted`);
    return { kind: 'success', delta: { [step.resultKey]: children } };
  }
  let specs: ChildSpec[];
  try {
    specs = step.children(state);
    if (!Array.isArray(specs)) throw new TypeError('children() must return a list');
  } catch (err) {
    return { kind: 'error', error: toStepError(err) };
  }
  if (specs.length === 0) return { kind: 'success', delta: { [step.resultKey]: [] } };
  const children: NewChild[] = [];
  for (const spec of specs) {
    const def = registry.get(spec.workflow);
    if (!def) return fail(`no workflow named ${JSON.stringify(spec.workflow)} to start`);
    let input: State;
    try {
      input = await parseForm(def.input, spec.input ?? {}, {}, `workflow ${def.name}`, forms);
    } catch (err) {
      return fail(`child ${def.name} cannot start: ${(err as Error).message}`);
    }
    children.push({
      id: randomUUID(),
      workflowName: def.name,
      workflowVersion: def.version,
      target: def.target,
      isTask: def.isTask,
      createdBy: claim.createdBy,
      input,
    });
  }
  return { kind: 'children', children };
}
