import { z } from 'zod';
import type { Actor } from './actor.ts';
import type { SqlRunner } from '../db/pool.ts';
import { TARGETS, type ProcessStatus, type State, type Target } from './types.ts';

/**
 * A function of the state as the engine stores it (the state's values unknown). Its parameters are
 * compared bivariantly, so a function typed for a narrower state (the typed builder's) fits.
 */
type Loose<A extends unknown[], R> = { bivariant(...args: A): R }['bivariant'];

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

/** What a callback step's action receives: a step's context and the URL that resumes the process. */
export interface CallbackContext<S extends State = State> extends StepContext<S> {
  /** `POST` a JSON body here to resume the process (`…/progress` for interim progress). */
  callbackUrl: string;
}

/** A step body: returns a partial state that is shallow-merged into the process state. */
export type StepFn = Loose<[ctx: StepContext], State | void | Promise<State | void>>;
/** A callback step's action: starts the external work and hands it `ctx.callbackUrl`. */
export type CallbackFn = Loose<[ctx: CallbackContext], State | void | Promise<State | void>>;
/** A condition on the state, evaluated before the step; false = the step is skipped. */
export type Predicate = Loose<[state: State], boolean>;
/** A number, or one computed from the state (e.g. a timeout the start form chose). */
export type FromState<T, S extends State = State> = T | Loose<[state: S], T>;

/**
 * One page of a form: a zod object, or a function building one from the state (for a start form:
 * the pages given so far, merged; for an input step: the process state merged with them) and
 * the pages given so far, in order.
 */
export type FormPage = z.ZodObject | Loose<[state: State, pages: State[]], z.ZodObject>;
/** A form: one page, or several in order. */
export type FormSpec = FormPage | readonly FormPage[];
const isPageList = (f: FormSpec): f is readonly FormPage[] => Array.isArray(f);

interface StepBase {
  name: string;
  /** Conditions from enclosing `conditional`s, all of which must hold. */
  when: Predicate[];
  /** The `stepGroup` it belongs to, shown with its step rows. */
  group?: string | undefined;
}
export interface PlainStep extends StepBase {
  kind: 'step';
  run: StepFn;
}
export interface RetryOptions {
  /** Attempts in all, the first included; after the last failure the process is `failed`. */
  maxAttempts: number;
  /** Wait before the first retry; doubles with each further one. */
  backoffSeconds: FromState<number>;
  /** The longest wait between two attempts. Default: no bound. */
  maxBackoffSeconds?: number | undefined;
}
export interface RetryStep extends StepBase, RetryOptions {
  kind: 'retry';
  run: StepFn;
}
export interface InputStep extends StepBase {
  kind: 'input';
  /** The form's pages, in order (one for a single form). */
  pages: FormPage[];
  /** Who may resume it: a role the user's token must carry (when the token carries roles). */
  assignee?: string | undefined;
  /** Who may resume it (default: the workflow's `authorize`). */
  authorizeResume?: AuthorizeHook | undefined;
}
export interface CallbackOptions {
  action: CallbackFn;
  /**
   * Checks the posted payload before it is stored: a zod schema, or a function that returns the
   * value to store (or throws). A refusal fails the process like a step error. Runs in the API
   * process when the callback arrives: keep it to checking the payload.
   */
  validate?: z.ZodType | Loose<[payload: unknown, state: State], unknown>;
  /** Seconds after which an unanswered callback fails the process (`callback timed out`). Default: none. */
  timeoutSeconds?: FromState<number> | undefined;
  /** State key the payload is stored under. Default `callbackResult`. */
  resultKey?: string;
}
export interface CallbackStep extends StepBase, Omit<CallbackOptions, 'resultKey'> {
  kind: 'callback';
  resultKey: string;
}
export interface SleepStep extends StepBase {
  kind: 'sleep';
  /** How long the process waits, without a lease or a worker slot. */
  seconds: FromState<number>;
}
/** A child process to start: a workflow and its start input. */
export interface ChildSpec {
  workflow: string;
  input?: State | State[];
}
export interface SubProcessesStep extends StepBase {
  kind: 'children';
  /** The children to start, from the state (an empty list continues at once). */
  children: Loose<[state: State], ChildSpec[]>;
  /** State key of the children's outcomes: `[{ id, workflow, status, state }]`. */
  resultKey: string;
}
export type StepDef =
  PlainStep | RetryStep | InputStep | CallbackStep | SleepStep | SubProcessesStep;
/** One entry of a workflow's `steps`: a step, or several from `conditional` or `stepGroup`. */
export type StepItem = StepDef | StepItem[];

/** A step that runs `run` on the step pool. */
export function step(name: string, run: StepFn): PlainStep {
  return { kind: 'step', name, run, when: [] };
}

/**
 * A step whose errors are retried without anyone: after a failure the process is `waiting` and
 * runs the step again after `backoffSeconds`, doubling up to `maxBackoffSeconds`, until
 * `maxAttempts` attempts failed (then `failed`). Errors that say what to do otherwise
 * (`AbortProcess`, `InconsistentData`) are not retried. A user may retry at once with resume.
 */
export function retryStep(name: string, run: StepFn, options: RetryOptions): RetryStep {
  return { kind: 'retry', name, run, when: [], ...options };
}

/**
 * A step that suspends the process until a user resumes it with input valid for `form` (one page,
 * a function of the state, or several pages); the input is shallow-merged into the state.
 */
export function inputStep(
  name: string,
  form: FormSpec,
  options: { assignee?: string; authorizeResume?: AuthorizeHook } = {},
): InputStep {
  return {
    kind: 'input',
    name,
    pages: isPageList(form) ? [...form] : [form],
    when: [],
    ...options,
  };
}

/**
 * A step that hands an external system a URL and waits for it: `action` runs (on the step pool)
 * with `ctx.callbackUrl`, the process goes `awaiting_callback`, and a `POST` of a JSON body to
 * that URL stores the body under `resultKey` and continues the process.
 */
export function callbackStep(name: string, options: CallbackOptions): CallbackStep {
  return {
    kind: 'callback',
    name,
    when: [],
    ...options,
    resultKey: options.resultKey ?? 'callbackResult',
  };
}

/**
 * A durable wait: the process is `waiting` (its wake time in `retryAt`) for `seconds`, holding no
 * lease and no worker slot, and goes on at its time, across restarts. A resume wakes it at once.
 */
export function sleep(name: string, seconds: FromState<number>): SleepStep {
  return { kind: 'sleep', name, seconds, when: [] };
}

/**
 * Fan-out and fan-in: starts one child process per entry of `children(state)` in the step's own
 * transaction, and waits (`waiting`) until every child has ended. Each child is an ordinary
 * process (its own queue, its own lease). Once all completed, the parent continues with their
 * ids, statuses and final states under `resultKey`; a child aborted fails the parent with the
 * reason; a failed child leaves the parent waiting until it is retried to completion or aborted.
 * Aborting the parent aborts its children.
 */
export function subProcesses(
  name: string,
  children: Loose<[state: State], ChildSpec[]>,
  options: { resultKey?: string } = {},
): SubProcessesStep {
  return { kind: 'children', name, children, when: [], resultKey: options.resultKey ?? 'children' };
}

/** Steps that run only when `predicate(state)` holds; otherwise each is recorded `skipped`. */
export function conditional(predicate: Predicate, ...steps: StepItem[]): StepDef[] {
  return flattenSteps(steps).map((s) => ({ ...s, when: [predicate, ...s.when] }));
}

/**
 * Steps shown as one group named `name` (the `group` of their step rows). They run and resume
 * one by one like any others: a process stopped inside a group continues at its sub-step.
 */
export function stepGroup(name: string, ...steps: StepItem[]): StepDef[] {
  return flattenSteps(steps).map((s) => ({
    ...s,
    group: s.group === undefined ? name : `${name} / ${s.group}`,
  }));
}

export function flattenSteps(items: StepItem[]): StepDef[] {
  return items.flatMap((i) => (Array.isArray(i) ? flattenSteps(i) : [i]));
}

/** What an authorization hook decides on. */
export interface AuthorizeContext {
  /** The user, with the roles and claims of their token. */
  user: Actor;
  action: 'start' | 'resume' | 'retry' | 'abort' | 'delete';
  workflow: string;
  /** The process acted on (absent for a start). */
  process?: {
    id: string;
    status: string;
    lastStep: string | null;
    createdBy: string | null;
    currentState: State;
  };
  /** A start's input, or a resume's (one page's object, or a list of them). */
  input?: unknown;
}

/** true: allowed; false or a reason: refused with 403 `forbidden`. */
export type AuthorizeHook = (ctx: AuthorizeContext) => boolean | string;

/** What a start predicate sees: the start's input and a read of the database in its transaction. */
export interface StartContext<I extends State = State> {
  workflow: string;
  input: I;
  user: string | null;
  /** Queries run in the start's transaction (starts of one workflow take turns). */
  db: SqlRunner;
}

/** true: the start may go ahead; false or a reason: it is refused (412 `precondition_failed`). */
export type RunPredicate<I extends State = State> = Loose<
  [ctx: StartContext<I>],
  boolean | string | Promise<boolean | string>
>;

export interface WorkflowOptions {
  /** Unique name, lower case: letters, digits, `_`. Used in URLs and queue routing. */
  name: string;
  target: Target;
  description?: string;
  /** The start form: one page (a zod object) or several. Default: an empty object. */
  input?: FormSpec;
  steps: StepItem[];
  /** Default: true when target is `system`. */
  isTask?: boolean;
  /** Checked at start, atomically with the insert; a refusal is 412 with its reason. */
  runPredicate?: RunPredicate;
  /**
   * Resource keys the process holds from start to end (released when it completes or is aborted,
   * kept while it failed), e.g. `(input) => ['device:' + input.device]`.
   */
  lockKeys?: Loose<[input: State], string[]>;
  /** A start that needs a held key: `refuse` (409 `resource_locked`, default) or `queue` (waits). */
  lockMode?: 'refuse' | 'queue';
  /**
   * Who may act on its processes: called for every start, abort, delete, and (unless the more
   * specific hooks below say otherwise) resume and retry, with the action in the context.
   */
  authorize?: AuthorizeHook;
  /** Who may retry a process of it (resume from failed, waiting, …). Default: `authorize`. */
  authorizeRetry?: AuthorizeHook;
  /**
   * The version of the definition (e.g. `"2"`, `"2026-11"`): each process records the one it
   * started on, and a changed workflow names both.
   */
  version?: string;
}

export interface WorkflowDefinition {
  readonly kind: 'workflow';
  name: string;
  target: Target;
  description: string;
  isTask: boolean;
  /** The start form's pages, in order. */
  input: FormPage[];
  steps: StepDef[];
  runPredicate?: RunPredicate | undefined;
  lockKeys?: Loose<[input: State], string[]> | undefined;
  lockMode: 'refuse' | 'queue';
  authorize?: AuthorizeHook | undefined;
  authorizeRetry?: AuthorizeHook | undefined;
  version?: string | undefined;
}

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
});

const isPage = (p: unknown) => p instanceof z.ZodObject || typeof p === 'function';
const fromState = (v: unknown) =>
  v === undefined || typeof v === 'function' || (typeof v === 'number' && v >= 0);

/** What is wrong with a step definition, if anything. */
function stepProblem(s: StepDef): string | undefined {
  if (s === null || typeof s !== 'object' || typeof s.name !== 'string' || s.name.length === 0)
    return 'a step needs a name';
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

// ---------------------------------------------------------------------------------------------
// The typed builder: `workflow({ name, target, input })` then `.step(…)`, `.inputStep(…)`, …
// Each call returns a new workflow (a `WorkflowDefinition` with one more step) whose state type
// is the one before merged with what the step adds, so a step reading a key that no earlier step
// provides, or using it as the wrong type, does not compile. The types are a compile-time layer:
// at runtime the result is the same flat definition the engine runs.

type Awaitable<T> = T | Promise<T>;
/** An object type without its index signatures (zod gives an empty or loose object one). */
type Known<T> = {
  [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K];
};
/** The empty state (`{}`, spelled so it means an object without keys). */
type Nothing = Record<never, never>;
/** One flat object type (for readable types in editors and errors). */
type Simplify<T> = T extends unknown ? { [K in keyof T]: T[K] } : never;
/** Narrows a computed type to a state, which the generic signatures below need to know. */
type AsState<T> = T extends infer M extends State ? M : never;

/** `S` with the keys of `D` shallow-merged over it, as the engine merges a step's result. */
export type Merge<S, D> = AsState<
  S extends unknown ? (D extends unknown ? Simplify<Omit<S, keyof D> & D> : never) : never
>;
/** What a step body may return: a partial state, or nothing. */
export type StepResult = State | void | undefined;
/** The keys a step's result adds: its keys, optional when it may also return nothing. */
export type Delta<R> = [Exclude<R, void | undefined>] extends [never]
  ? Nothing
  : [R] extends [Exclude<R, void | undefined>]
    ? Exclude<R, void | undefined>
    : Partial<Exclude<R, void | undefined>>;
/** After a `conditional`: what its steps add may be missing (they may have been skipped). */
export type Skippable<S, T> = AsState<
  Simplify<
    {
      [K in keyof T as K extends keyof S ? K : never]: T[K] | (K extends keyof S ? S[K] : never);
    } & {
      [K in keyof T as K extends keyof S ? never : K]?: T[K];
    }
  >
>;

/** What a form page adds to the state: its schema's output. */
type Out<Z extends z.ZodObject> = Known<z.output<Z>>;
/** A page of a typed form: a zod object, or a function of the state (and pages so far) building one. */
export type Page<S, Z extends z.ZodObject> = Z | ((state: S, pages: State[]) => Z);
type Empty = z.ZodObject<Nothing>;
/**
 * A typed form of one to four pages: each page's function sees the state (`S`) merged with the
 * pages before it.
 */
export type Form<
  S,
  A extends z.ZodObject,
  B extends z.ZodObject = Empty,
  C extends z.ZodObject = Empty,
  D extends z.ZodObject = Empty,
> =
  | Page<S, A>
  | readonly [Page<S, A>]
  | readonly [Page<S, A>, Page<Merge<S, Out<A>>, B>]
  | readonly [Page<S, A>, Page<Merge<S, Out<A>>, B>, Page<Merge<Merge<S, Out<A>>, Out<B>>, C>]
  | readonly [
      Page<S, A>,
      Page<Merge<S, Out<A>>, B>,
      Page<Merge<Merge<S, Out<A>>, Out<B>>, C>,
      Page<Merge<Merge<Merge<S, Out<A>>, Out<B>>, Out<C>>, D>,
    ];
/** `S` with the fields of a form's pages merged in. */
export type WithForm<
  S,
  A extends z.ZodObject,
  B extends z.ZodObject,
  C extends z.ZodObject,
  D extends z.ZodObject,
> = Merge<Merge<Merge<Merge<S, Out<A>>, Out<B>>, Out<C>>, Out<D>>;

/** A child's outcome, as `subProcesses` stores it under its `resultKey`. */
export interface ChildOutcome {
  id: string;
  workflow: string;
  status: ProcessStatus;
  state: State;
}

/** An input step's options. */
export interface InputOptions {
  /** Who may resume it: a role the user's token must carry (when the token carries roles). */
  assignee?: string;
  /** Who may resume it (default: the workflow's `authorize`). */
  authorizeResume?: AuthorizeHook;
}

/** A workflow being defined: its definition so far, and the calls that add a step to it. */
export interface WorkflowBuilder<S extends State> extends WorkflowDefinition {
  /** A step that runs `run` on the step pool; what it returns is merged into the state. */
  step<R extends StepResult>(
    name: string,
    run: (ctx: StepContext<S>) => Awaitable<R>,
  ): WorkflowBuilder<Merge<S, Delta<R>>>;
  /** A step retried by itself after an error, with backoff (see `retryStep`). */
  retryStep<R extends StepResult>(
    name: string,
    run: (ctx: StepContext<S>) => Awaitable<R>,
    options: {
      maxAttempts: number;
      backoffSeconds: number | ((state: S) => number);
      maxBackoffSeconds?: number;
    },
  ): WorkflowBuilder<Merge<S, Delta<R>>>;
  /** Suspends until a user resumes with input valid for `form`; its fields join the state. */
  inputStep<
    A extends z.ZodObject,
    B extends z.ZodObject = Empty,
    C extends z.ZodObject = Empty,
    D extends z.ZodObject = Empty,
  >(
    name: string,
    form: Form<S, A, B, C, D>,
    options?: InputOptions,
  ): WorkflowBuilder<WithForm<S, A, B, C, D>>;
  /**
   * Runs `action` with `ctx.callbackUrl` and waits for a `POST` there; the payload (as `validate`
   * returns it, else `unknown`) is stored under `resultKey` (default `callbackResult`).
   */
  callbackStep<R extends StepResult = void, K extends string = 'callbackResult', V = unknown>(
    name: string,
    options: {
      action: (ctx: CallbackContext<S>) => Awaitable<R>;
      validate?: z.ZodType<V> | ((payload: unknown, state: Merge<S, Delta<R>>) => V);
      timeoutSeconds?: number | ((state: Merge<S, Delta<R>>) => number);
      resultKey?: K;
    },
  ): WorkflowBuilder<Merge<Merge<S, Delta<R>>, { [P in K]: V }>>;
  /** A durable wait of `seconds` (a number, or one from the state). */
  sleep(name: string, seconds: number | ((state: S) => number)): WorkflowBuilder<S>;
  /** Starts a child process per entry and waits for all; their outcomes go under `resultKey`. */
  subProcesses<K extends string = 'children'>(
    name: string,
    children: (state: S) => ChildSpec[],
    options?: { resultKey?: K },
  ): WorkflowBuilder<Merge<S, { [P in K]: ChildOutcome[] }>>;
  /** Steps that run only when `predicate(state)` holds; afterwards what they add is optional. */
  conditional<T extends State>(
    predicate: (state: S) => boolean,
    steps: (b: WorkflowBuilder<S>) => WorkflowBuilder<T>,
  ): WorkflowBuilder<Skippable<S, T>>;
  /** Steps shown as one group named `name`. */
  group<T extends State>(
    name: string,
    steps: (b: WorkflowBuilder<S>) => WorkflowBuilder<T>,
  ): WorkflowBuilder<T>;
}

/** The state a workflow's last step leaves (of a `WorkflowBuilder`). */
export type StateOf<W> = W extends WorkflowBuilder<infer S> ? S : State;

/** The options of a typed workflow (`input` is the start form, typed like an input step's). */
export interface TypedWorkflowOptions<
  A extends z.ZodObject,
  B extends z.ZodObject,
  C extends z.ZodObject,
  D extends z.ZodObject,
> {
  /** Unique name, lower case: letters, digits, `_`. Used in URLs and queue routing. */
  name: string;
  target: Target;
  description?: string;
  /** The start form: one page (a zod object) or up to four. Default: an empty object. */
  input?: Form<Nothing, A, B, C, D>;
  /** Default: true when target is `system`. */
  isTask?: boolean;
  /** Checked at start, atomically with the insert; a refusal is 412 with its reason. */
  runPredicate?: RunPredicate<WithForm<Nothing, A, B, C, D>>;
  /** Resource keys the process holds from start to end, e.g. `(input) => ['device:' + input.device]`. */
  lockKeys?: (input: WithForm<Nothing, A, B, C, D>) => string[];
  /** A start that needs a held key: `refuse` (409 `resource_locked`, default) or `queue` (waits). */
  lockMode?: 'refuse' | 'queue';
  /** Who may act on its processes (see `WorkflowOptions.authorize`). */
  authorize?: AuthorizeHook;
  /** Who may retry a process of it. Default: `authorize`. */
  authorizeRetry?: AuthorizeHook;
  /** The version of the definition (see `WorkflowOptions.version`). */
  version?: string;
  /** The steps follow as calls: `.step(…)`, `.inputStep(…)`, … */
  steps?: never;
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
    step: (name, run) => next([step(name, run)]),
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
>(options: TypedWorkflowOptions<A, B, C, D>): WorkflowBuilder<WithForm<Nothing, A, B, C, D>>;
export function workflow(options: WorkflowOptions): WorkflowDefinition;
export function workflow(
  options: WorkflowOptions | TypedWorkflowOptions<Empty, Empty, Empty, Empty>,
) {
  checkedOptions(options);
  const input: FormPage[] =
    options.input === undefined
      ? [z.object({})]
      : isPageList(options.input)
        ? [...options.input]
        : [options.input];
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
  };
  if (options.steps === undefined) return builder<Nothing>(def);
  const steps = appendSteps(options.name, [], flattenSteps(options.steps));
  if (steps.length === 0) throw new Error(`workflow ${options.name} has no steps`);
  return { ...def, steps };
}
