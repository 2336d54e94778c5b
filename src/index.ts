// The public entry for workflow authors: everything a workflow file imports (the package's
// `exports`). Workflows import nothing else of the orchestrator.
export { z } from 'zod';
export {
  callbackStep,
  conditional,
  inputStep,
  pages,
  retryStep,
  sleep,
  step,
  stepGroup,
  subProcesses,
  workflow,
  type AuthorizeContext,
  type AuthorizeHook,
  type CallbackContext,
  type CallbackOptions,
  type ChildOutcome,
  type ChildSpec,
  type Delta,
  type Form,
  type FormInput,
  type FormPage,
  type FormPages,
  type FormSpec,
  type FromState,
  type InputOf,
  type InputOptions,
  type Merge,
  type Page,
  type PageChain,
  type Predicate,
  type RetryOptions,
  type RunPredicate,
  type Skippable,
  type StartContext,
  type StateOf,
  type StepContext,
  type StepDef,
  type StepFn,
  type StepOptions,
  type StepResult,
  type TypedWorkflowOptions,
  type WithForm,
  type WorkflowBuilder,
  type WorkflowDefinition,
  type WorkflowOptions,
} from './engine/dsl.ts';
export { AbortProcess, ApiUnavailable, InconsistentData } from './engine/errors.ts';
export { noUncompletedInstance } from './engine/predicates.ts';
export type { ProcessStatus, State, Target } from './engine/types.ts';
// The test kit's types (the kit itself, which starts Postgres, is `src/testing.ts`, the package's
// `./testing`).
export type { ActAs, TestEngine, TestEngineOptions, TestProcess } from './testing.ts';
/** For the built-in tasks only (workflows/task_*.ts): the orchestrator's own internals. */
export * as internal from './internal.ts';
