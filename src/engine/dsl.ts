import { z } from 'zod';
import { TARGETS, type State, type Target } from './types.ts';

/** What a step body receives. */
export interface StepContext<S extends State = State> {
  /** The process state: the initial input merged with every earlier step's result. */
  state: S;
  processId: string;
  /** 1 on the first try of this step, +1 for every committed failure before it. */
  attempt: number;
  /** Fires when the process is aborted (or the runner loses its lease) while the step runs. */
  signal: AbortSignal;
}

/** A step body: returns a partial state that is shallow-merged into the process state. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StepFn = (ctx: StepContext<any>) => State | void | Promise<State | void>;
/** A condition on the state, evaluated before the step; false = the step is skipped. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Predicate = (state: any) => boolean;

interface StepBase {
  name: string;
  /** Conditions from enclosing `conditional`s, all of which must hold. */
  when: Predicate[];
}
export interface PlainStep extends StepBase {
  kind: 'step';
  run: StepFn;
}
export interface InputStep extends StepBase {
  kind: 'input';
  form: z.ZodObject;
  assignee?: string;
}
export type StepDef = PlainStep | InputStep;
/** One entry of a workflow's `steps`: a step, or a group of them from `conditional`. */
export type StepItem = StepDef | StepItem[];

/** A step that runs `run` on the step pool. */
export function step(name: string, run: StepFn): PlainStep {
  return { kind: 'step', name, run, when: [] };
}

/**
 * A step that suspends the process until a user resumes it with input valid for `form`; the
 * input is shallow-merged into the state.
 */
export function inputStep(
  name: string,
  form: z.ZodObject,
  options: { assignee?: string } = {},
): InputStep {
  return { kind: 'input', name, form, when: [], ...options };
}

/** Steps that run only when `predicate(state)` holds; otherwise each is recorded `skipped`. */
export function conditional(predicate: Predicate, ...steps: StepItem[]): StepDef[] {
  return flattenSteps(steps).map((s) => ({ ...s, when: [predicate, ...s.when] }));
}

export function flattenSteps(items: StepItem[]): StepDef[] {
  return items.flatMap((i) => (Array.isArray(i) ? flattenSteps(i) : [i]));
}

export interface WorkflowOptions {
  /** Unique name, lower case: letters, digits, `_`. Used in URLs and queue routing. */
  name: string;
  target: Target;
  description?: string;
  /** Schema of the initial input. Default: an empty object. */
  input?: z.ZodObject;
  steps: StepItem[];
  /** Default: true when target is `system`. */
  isTask?: boolean;
}

export interface WorkflowDefinition {
  readonly kind: 'workflow';
  name: string;
  target: Target;
  description: string;
  isTask: boolean;
  input: z.ZodObject;
  steps: StepDef[];
}

const optionsSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]*$/, 'must be lower case letters, digits and _'),
  target: z.enum(TARGETS),
  description: z.string().optional(),
  isTask: z.boolean().optional(),
});

/** Defines a workflow; an invalid definition throws with what is wrong. */
export function workflow(options: WorkflowOptions): WorkflowDefinition {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid workflow ${JSON.stringify(options.name)}: ${msg}`);
  }
  const steps = flattenSteps(options.steps ?? []);
  if (steps.length === 0) throw new Error(`workflow ${options.name} has no steps`);
  const seen = new Set<string>();
  for (const s of steps) {
    const valid =
      s !== null &&
      typeof s === 'object' &&
      typeof s.name === 'string' &&
      s.name.length > 0 &&
      (s.kind === 'input' ? s.form instanceof z.ZodObject : typeof s.run === 'function');
    if (!valid)
      throw new Error(`workflow ${options.name} has an invalid step: ${JSON.stringify(s)}`);
    if (seen.has(s.name)) throw new Error(`workflow ${options.name} has two steps named ${s.name}`);
    seen.add(s.name);
  }
  return {
    kind: 'workflow',
    name: options.name,
    target: options.target,
    description: options.description ?? '',
    isTask: options.isTask ?? options.target === 'system',
    input: options.input ?? z.object({}),
    steps,
  };
}
