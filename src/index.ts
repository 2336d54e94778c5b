// The public entry for workflow authors: everything a workflow file imports.
export { z } from 'zod';
export {
  callbackStep,
  conditional,
  inputStep,
  retryStep,
  sleep,
  step,
  stepGroup,
  subProcesses,
  workflow,
  type CallbackContext,
  type CallbackOptions,
  type ChildSpec,
  type FormPage,
  type FormSpec,
  type FromState,
  type RetryOptions,
  type RunPredicate,
  type StartContext,
  type StepContext,
  type StepFn,
  type WorkflowDefinition,
  type WorkflowOptions,
} from './engine/dsl.ts';
export { AbortProcess, ApiUnavailable, InconsistentData } from './engine/errors.ts';
export { noUncompletedInstance } from './engine/predicates.ts';
export type { State, Target } from './engine/types.ts';
