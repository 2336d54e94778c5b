// The steps of a workflow and the functions that define them: the step kinds, what a step body
// receives, forms (an input step's pages), and `conditional` and `stepGroup` over lists of them.
import type { z } from 'zod';
import type { State } from '../types.ts';
import type { AuthorizeHook } from './definition.ts';
import type { FormPages } from './pages.ts';

/**
 * A function of the state as the engine stores it (the state's values unknown). Its parameters are
 * compared bivariantly, so a function typed for a narrower state (the typed builder's) fits.
 */
export type Loose<A extends unknown[], R> = { bivariant(...args: A): R }['bivariant'];

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
 * the pages given so far, in order. The function may be async (a page built from a lookup), and
 * so may the page's refinements; an evaluation of the form has FORM_TIMEOUT_MS.
 */
export type FormPage =
  z.ZodObject | Loose<[state: State, pages: State[]], z.ZodObject | Promise<z.ZodObject>>;
/** A form: one page, or several in order (a list, or a typed form of `pages`). */
export type FormSpec = FormPage | readonly FormPage[] | FormPages<never, z.ZodObject>;
/** A form's pages, in order (a form of `pages` is a list at runtime). */
export const pageList = (f: FormSpec): FormPage[] =>
  Array.isArray(f) ? [...(f as readonly FormPage[])] : [f as FormPage];

interface StepBase {
  name: string;
  /** Conditions from enclosing `conditional`s, all of which must hold. */
  when: Predicate[];
  /** The `stepGroup` it belongs to, shown with its step rows. */
  group?: string | undefined;
}
/** What a step that runs a body (a step, a retry step, a callback step's action) may declare. */
export interface StepOptions {
  /**
   * Seconds the body may run. Past it the step's `signal` fires; a body that has not stopped a
   * grace period later loses its thread (terminated and replaced). Either way the step fails with
   * `StepTimeout` ("the step ran past its time limit of N s"). Default: STEP_TIME_LIMIT_SECONDS.
   */
  timeLimitSeconds?: number | undefined;
}
export interface PlainStep extends StepBase, StepOptions {
  kind: 'step';
  run: StepFn;
}
export interface RetryOptions extends StepOptions {
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
  /**
   * Who may resume it: a role the user's token must carry. Recorded on the process while it waits
   * here (`assignee` in the API, the list's filter and the page). A token that carries no roles
   * (a static API token) is refused too, unless `allowTokensWithoutRoles`; without authentication
   * (everyone anonymous) it is shown, not enforced.
   */
  assignee?: string | undefined;
  /** With an assignee: let a token that carries no roles at all (a static API token) resume it too. */
  allowTokensWithoutRoles?: boolean | undefined;
  /** Who may resume it (default: the workflow's `authorize`). */
  authorizeResume?: AuthorizeHook | undefined;
}
export interface CallbackOptions extends StepOptions {
  /** Starts the external work; its time limit is `timeLimitSeconds` (`timeoutSeconds` is the answer's). */
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

/** A step that runs `run` on the step pool (`options.timeLimitSeconds`: see StepOptions). */
export function step(name: string, run: StepFn, options: StepOptions = {}): PlainStep {
  return { kind: 'step', name, run, when: [], ...options };
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
  options: {
    assignee?: string;
    allowTokensWithoutRoles?: boolean;
    authorizeResume?: AuthorizeHook;
  } = {},
): InputStep {
  return {
    kind: 'input',
    name,
    pages: pageList(form),
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
