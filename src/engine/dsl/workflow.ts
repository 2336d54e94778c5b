// `workflow`: checks a definition (its options, each step, no name twice) and returns it, typed
// (a builder whose calls add steps) or untyped (its steps given as a list).
import { z } from 'zod';
import { TARGETS, type State } from '../types.ts';
import type { WorkflowDefinition, WorkflowOptions } from './definition.ts';
import {
  callbackStep,
  conditional,
  flattenSteps,
  inputStep,
  pageList,
  retryStep,
  sleep,
  step,
  stepGroup,
  subProcesses,
  type FormPage,
  type StepDef,
} from './steps.ts';
import type {
  Empty,
  FormInput,
  Nothing,
  TypedWorkflowOptions,
  WithForm,
  WorkflowBuilder,
} from './typed.ts';

const optionsSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]*$/, 'must be lower case letters, digits and _'),
  target: z.enum(TARGETS),
  description: z.string().optional(),
  isTask: z.boolean().optional(),
  runPredicate: z.function().optional(),
  lockKeys: z.function().optional(),
  lockMode: z.enum(['refuse', 'queue']).optional(),
  authorize: z.function().optional(),
  authorizeRetry: z.function().optional(),
  version: z.string().min(1).max(100).optional(),
  patchable: z.instanceof(z.ZodObject).optional(),
});

const isPage = (p: unknown) => p instanceof z.ZodObject || typeof p === 'function';
const fromState = (v: unknown) =>
  v === undefined || typeof v === 'function' || (typeof v === 'number' && v >= 0);

/** What is wrong with a step definition, if anything. */
function stepProblem(s: StepDef): string | undefined {
  if (s === null || typeof s !== 'object' || typeof s.name !== 'string' || s.name.length === 0)
    return 'a step needs a name';
  if (s.kind === 'step' || s.kind === 'retry' || s.kind === 'callback') {
    const limit = s.timeLimitSeconds;
    if (limit !== undefined && !(typeof limit === 'number' && limit > 0 && Number.isFinite(limit)))
      return 'timeLimitSeconds must be a number > 0';
  }
  switch (s.kind) {
    case 'step':
      return typeof s.run === 'function' ? undefined : 'run must be a function';
    case 'retry':
      if (typeof s.run !== 'function') return 'run must be a function';
      if (!Number.isInteger(s.maxAttempts) || s.maxAttempts < 1)
        return 'maxAttempts must be an integer >= 1';
      if (!fromState(s.backoffSeconds)) return 'backoffSeconds must be a number >= 0';
      return s.maxBackoffSeconds === undefined || s.maxBackoffSeconds >= 0
        ? undefined
        : 'maxBackoffSeconds must be >= 0';
    case 'input':
      return s.pages.length > 0 && s.pages.every(isPage)
        ? undefined
        : 'form must be a zod object, a function returning one, or a list of them';
    case 'children':
      if (typeof s.children !== 'function') return 'children must be a function of the state';
      return typeof s.resultKey === 'string' && s.resultKey.length > 0
        ? undefined
        : 'resultKey must be a non-empty string';
    case 'sleep':
      return fromState(s.seconds) && s.seconds !== undefined
        ? undefined
        : 'seconds must be a number >= 0 or a function of the state';
    case 'callback':
      if (typeof s.action !== 'function') return 'action must be a function';
      if (!fromState(s.timeoutSeconds)) return 'timeoutSeconds must be a number >= 0';
      if (
        s.validate !== undefined &&
        !(s.validate instanceof z.ZodType || typeof s.validate === 'function')
      )
        return 'validate must be a zod schema or a function';
      return typeof s.resultKey === 'string' && s.resultKey.length > 0
        ? undefined
        : 'resultKey must be a non-empty string';
    default:
      return 'unknown step kind';
  }
}

/** Adds steps to a workflow's, checking each and that no name repeats. */
function appendSteps(workflowName: string, steps: StepDef[], added: StepDef[]): StepDef[] {
  const seen = new Set(steps.map((s) => s.name));
  for (const s of added) {
    const problem = stepProblem(s);
    if (problem)
      throw new Error(
        `workflow ${workflowName} has an invalid step ${JSON.stringify(s?.name ?? null)}: ${problem}`,
      );
    if (seen.has(s.name)) throw new Error(`workflow ${workflowName} has two steps named ${s.name}`);
    seen.add(s.name);
  }
  return [...steps, ...added];
}

function builder<S extends State>(def: WorkflowDefinition): WorkflowBuilder<S> {
  const next = <T extends State>(added: StepDef[]): WorkflowBuilder<T> =>
    builder<T>({ ...def, steps: appendSteps(def.name, def.steps, added) });
  /** The steps a nested builder function adds, on its own (the caller checks them). */
  const nested = (steps: (b: WorkflowBuilder<S>) => WorkflowDefinition): StepDef[] =>
    steps(builder<S>({ ...def, steps: [] })).steps;
  return {
    ...def,
    step: (name, run, options = {}) => next([step(name, run, options)]),
    retryStep: (name, run, options) => next([retryStep(name, run, options)]),
    inputStep: (name, form, options = {}) => next([inputStep(name, form, options)]),
    callbackStep: (name, options) => next([callbackStep(name, options)]),
    sleep: (name, seconds) => next([sleep(name, seconds)]),
    subProcesses: (name, children, options = {}) => next([subProcesses(name, children, options)]),
    conditional: (predicate, steps) => next(conditional(predicate, nested(steps))),
    group: (name, steps) => next(stepGroup(name, nested(steps))),
  };
}

function checkedOptions(options: { name: string }): void {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid workflow ${JSON.stringify(options.name)}: ${msg}`);
  }
}

/**
 * Defines a workflow; an invalid definition throws with what is wrong.
 *
 * Typed (the form to use): `workflow({ name, target, input })` returns a `WorkflowBuilder`, and
 * each `.step(…)`, `.inputStep(…)`, … adds a step whose `state` is typed from the start form and
 * the steps before it. The workflow file exports the result (with at least one step).
 *
 * Untyped (kept for compatibility): `workflow({ …, steps: [step(…), …] })`, where every step sees
 * the state as `State` (unknown values).
 */
export function workflow<
  A extends z.ZodObject = Empty,
  B extends z.ZodObject = Empty,
  C extends z.ZodObject = Empty,
  D extends z.ZodObject = Empty,
>(
  options: TypedWorkflowOptions<A, B, C, D>,
): WorkflowBuilder<WithForm<Nothing, A, B, C, D>, FormInput<A, B, C, D>>;
export function workflow(options: WorkflowOptions): WorkflowDefinition;
export function workflow(
  options: WorkflowOptions | TypedWorkflowOptions<Empty, Empty, Empty, Empty>,
) {
  checkedOptions(options);
  const input: FormPage[] = options.input === undefined ? [z.object({})] : pageList(options.input);
  if (input.length === 0 || !input.every(isPage))
    throw new Error(
      `workflow ${options.name}: input must be a zod object, a function returning one, or a list of them`,
    );
  const def: WorkflowDefinition = {
    kind: 'workflow',
    name: options.name,
    target: options.target,
    description: options.description ?? '',
    isTask: options.isTask ?? options.target === 'system',
    input,
    steps: [],
    runPredicate: options.runPredicate,
    lockKeys: options.lockKeys,
    lockMode: options.lockMode ?? 'refuse',
    authorize: options.authorize,
    authorizeRetry: options.authorizeRetry,
    version: options.version,
    patchable: options.patchable,
  };
  if (options.steps === undefined) return builder<Nothing>(def);
  const steps = appendSteps(options.name, [], flattenSteps(options.steps));
  if (steps.length === 0) throw new Error(`workflow ${options.name} has no steps`);
  return { ...def, steps };
}
