// The orchestrator's internals that its built-in tasks (workflows/task_*.ts) use to maintain the
// orchestrator itself, re-exported from the public entry as `internal`. Not an API for the
// workflows of a team: it follows the engine, not a version.
export { loadConfig } from './config/index.ts';
export { unendedPositions } from './db/processes.ts';
export {
  deleteCompletedTasks,
  releaseAbandonedLeases,
  resumeOverdueRetries,
} from './db/maintenance.ts';
export { positionProblem } from './engine/registry.ts';
export { findChangedProcesses } from './engine/validate.ts';
export { systemDatabase, systemRegistry } from './engine/system.ts';
