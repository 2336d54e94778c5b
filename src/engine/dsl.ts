// The workflow DSL, what workflow files define their workflows with (re-exported by src/index.ts):
// dsl/steps.ts the step kinds and the functions defining them, dsl/definition.ts a workflow's
// options, hooks and definition, dsl/typed.ts the typed builder's types, dsl/workflow.ts
// `workflow` itself (checks and builds the definition).
export {
  callbackStep,
  conditional,
  flattenSteps,
  inputStep,
  retryStep,
  sleep,
  step,
  stepGroup,
  subProcesses,
  type CallbackContext,
  type CallbackFn,
  type CallbackOptions,
  type CallbackStep,
  type ChildSpec,
  type FormPage,
  type FormSpec,
  type FromState,
  type InputStep,
  type PlainStep,
  type Predicate,
  type RetryOptions,
  type RetryStep,
  type SleepStep,
  type StepContext,
  type StepDef,
  type StepFn,
  type StepItem,
  type StepOptions,
  type SubProcessesStep,
} from './dsl/steps.ts';
export type {
  AuthorizeContext,
  AuthorizeHook,
  RunPredicate,
  StartContext,
  WorkflowDefinition,
  WorkflowOptions,
} from './dsl/definition.ts';
export type {
  ChildOutcome,
  Delta,
  Form,
  FormInput,
  InputOf,
  InputOptions,
  Merge,
  Page,
  Skippable,
  StateOf,
  StepResult,
  TypedWorkflowOptions,
  WithForm,
  WorkflowBuilder,
} from './dsl/typed.ts';
export { pages, type FormPages, type PageChain } from './dsl/pages.ts';
export { workflow } from './dsl/workflow.ts';
