// A workflow's definition: its options, the hooks that authorize and precondition its starts and
// actions, and the flat definition the engine runs (what both forms of `workflow` return).
import type { z } from 'zod';
import type { SqlRunner } from '../../db/pool.ts';
import type { Actor } from '../actor.ts';
import type { State, Target } from '../types.ts';
import type { FormPage, FormSpec, Loose, StepDef, StepItem } from './steps.ts';

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
  /**
   * The keys an operator may patch before a retry (`PUT …/resume` with `{"state": {…}}`), with
   * their types: a patch of another key, or of a value this refuses, is 400 with its path and
   * nothing is written. Without it any key may be patched, keeping the JSON type of the value it
   * replaces unless the body says `"force": true`.
   */
  patchable?: z.ZodObject;
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
  patchable?: z.ZodObject | undefined;
}
