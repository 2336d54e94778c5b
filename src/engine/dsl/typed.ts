// The typed builder's types: `workflow({ name, target, input })` then `.step(…)`, `.inputStep(…)`, …
// Each call returns a new workflow (a `WorkflowDefinition` with one more step) whose state type
// is the one before merged with what the step adds, so a step reading a key that no earlier step
// provides, or using it as the wrong type, does not compile. The types are a compile-time layer:
// at runtime the result is the same flat definition the engine runs (./workflow.ts builds it).
import type { z } from 'zod';
import type { ProcessStatus, State, Target } from '../types.ts';
import type { AuthorizeHook, RunPredicate, WorkflowDefinition } from './definition.ts';
import type { FormPages } from './pages.ts';
import type { CallbackContext, ChildSpec, StepContext } from './steps.ts';

type Awaitable<T> = T | Promise<T>;
/** An object type without its index signatures (zod gives an empty or loose object one). */
type Known<T> = {
  [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K];
};
/** The empty state (`{}`, spelled so it means an object without keys). */
export type Nothing = Record<never, never>;
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
export type Out<Z extends z.ZodObject> = Known<z.output<Z>>;
/**
 * A page of a typed form: a zod object, or a function of the state (and pages so far) building
 * one, which may be async (a page built from a lookup).
 */
export type Page<S, Z extends z.ZodObject> = Z | ((state: S, pages: State[]) => Awaitable<Z>);
export type Empty = z.ZodObject<Nothing>;
/**
 * A typed form: one page, a list of up to four, or any number through `pages((form) =>
 * form.page(…).page(…))`; each page's function sees the state (`S`) merged with the pages before
 * it (with `pages`, `A` is all the pages' fields in one object).
 */
export type Form<
  S,
  A extends z.ZodObject,
  B extends z.ZodObject = Empty,
  C extends z.ZodObject = Empty,
  D extends z.ZodObject = Empty,
> =
  | Page<S, A>
  | FormPages<S, A>
  | readonly [Page<S, A>]
  | readonly [Page<S, A>, Page<Merge<S, Out<A>>, B>]
  | readonly [Page<S, A>, Page<Merge<S, Out<A>>, B>, Page<Merge<Merge<S, Out<A>>, Out<B>>, C>]
  | readonly [
      Page<S, A>,
      Page<Merge<S, Out<A>>, B>,
      Page<Merge<Merge<S, Out<A>>, Out<B>>, C>,
      Page<Merge<Merge<Merge<S, Out<A>>, Out<B>>, Out<C>>, D>,
    ];
/** What a form page asks for: its schema's input (a field with a default may be left out). */
type In<Z extends z.ZodObject> = Known<z.input<Z>>;
/** Whether a page is one the form leaves out (`Empty`, the default of pages not given). */
type Absent<Z extends z.ZodObject> = [keyof In<Z>] extends [never] ? true : false;
/**
 * What a form of these pages takes, as the engine parses it: one page's object (or a list of
 * it), or the pages' objects in a list for a form of several.
 */
export type FormInput<
  A extends z.ZodObject,
  B extends z.ZodObject = Empty,
  C extends z.ZodObject = Empty,
  D extends z.ZodObject = Empty,
> =
  Absent<B> extends true
    ? In<A> | [In<A>]
    : Absent<C> extends true
      ? [In<A>, In<B>]
      : Absent<D> extends true
        ? [In<A>, In<B>, In<C>]
        : [In<A>, In<B>, In<C>, In<D>];
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
  /**
   * Who may resume it: a role the user's token must carry. Recorded on the process while it waits
   * here (`assignee` in the API, the list's filter and the page). A token that carries no roles
   * (a static API token) is refused too, unless `allowTokensWithoutRoles`; without authentication
   * (everyone anonymous) it is shown, not enforced.
   */
  assignee?: string;
  /** With an assignee: let a token that carries no roles at all (a static API token) resume it too. */
  allowTokensWithoutRoles?: boolean;
  /** Who may resume it (default: the workflow's `authorize`). */
  authorizeResume?: AuthorizeHook;
}

/** Types only: the key under which a builder carries its start form's input type (never set). */
declare const startInput: unique symbol;

/**
 * A workflow being defined: its definition so far, and the calls that add a step to it. `S` is
 * the state after its last step, `I` what its start form takes (see `InputOf`).
 */
export interface WorkflowBuilder<S extends State, I = unknown> extends WorkflowDefinition {
  /** Types only, never set: what the start form takes. */
  readonly [startInput]?: I;
  /**
   * A step that runs `run` on the step pool; what it returns is merged into the state.
   * `timeLimitSeconds`: how long it may run (default STEP_TIME_LIMIT_SECONDS), then it fails
   * with `StepTimeout`.
   */
  step<R extends StepResult>(
    name: string,
    run: (ctx: StepContext<S>) => Awaitable<R>,
    options?: { timeLimitSeconds?: number },
  ): WorkflowBuilder<Merge<S, Delta<R>>, I>;
  /** A step retried by itself after an error, with backoff (see `retryStep`). */
  retryStep<R extends StepResult>(
    name: string,
    run: (ctx: StepContext<S>) => Awaitable<R>,
    options: {
      maxAttempts: number;
      backoffSeconds: number | ((state: S) => number);
      maxBackoffSeconds?: number;
      /** How long one attempt may run (see `step`); one past it is a failed attempt. */
      timeLimitSeconds?: number;
    },
  ): WorkflowBuilder<Merge<S, Delta<R>>, I>;
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
  ): WorkflowBuilder<WithForm<S, A, B, C, D>, I>;
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
      /** How long `action` may run (see `step`); `timeoutSeconds` is how long the answer may take. */
      timeLimitSeconds?: number;
      resultKey?: K;
    },
  ): WorkflowBuilder<Merge<Merge<S, Delta<R>>, { [P in K]: V }>, I>;
  /** A durable wait of `seconds` (a number, or one from the state). */
  sleep(name: string, seconds: number | ((state: S) => number)): WorkflowBuilder<S, I>;
  /** Starts a child process per entry and waits for all; their outcomes go under `resultKey`. */
  subProcesses<K extends string = 'children'>(
    name: string,
    children: (state: S) => ChildSpec[],
    options?: { resultKey?: K },
  ): WorkflowBuilder<Merge<S, { [P in K]: ChildOutcome[] }>, I>;
  /** Steps that run only when `predicate(state)` holds; afterwards what they add is optional. */
  conditional<T extends State>(
    predicate: (state: S) => boolean,
    steps: (b: WorkflowBuilder<S, I>) => WorkflowBuilder<T, I>,
  ): WorkflowBuilder<Skippable<S, T>, I>;
  /** Steps shown as one group named `name`. */
  group<T extends State>(
    name: string,
    steps: (b: WorkflowBuilder<S, I>) => WorkflowBuilder<T, I>,
  ): WorkflowBuilder<T, I>;
}

/** The state a workflow's last step leaves (of a `WorkflowBuilder`). */
export type StateOf<W> = W extends WorkflowBuilder<infer S> ? S : State;
/**
 * What a workflow's start form takes (of a `WorkflowBuilder`; `unknown` for an untyped one): the
 * body of `POST /api/workflows/:name/start`, one object, or a list of objects for several pages.
 */
export type InputOf<W> = W extends { readonly [startInput]?: infer I } ? I : unknown;

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
  /** The keys an operator may patch before a retry (see `WorkflowOptions.patchable`). */
  patchable?: z.ZodObject;
  /** The steps follow as calls: `.step(…)`, `.inputStep(…)`, … */
  steps?: never;
}
