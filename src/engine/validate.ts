// Processes that no longer fit their workflow (it changed under them): found by the built-in task
// task_validate_workflows and, logged, at every API start.
import { unendedPositions } from '../db/processes.ts';
import type { Queryable } from '../db/pool.ts';
import { positionProblem, type Registry } from './registry.ts';

export interface ChangedProcess {
  id: string;
  workflow: string;
  status: string;
  reason: string;
  /** The workflow version it started on, and the registered one (when named). */
  startedOn: string | null;
  current: string | null;
}

const PAGE = 1_000;

/**
 * Checks every process that has not ended against its registered workflow (the step at its last
 * row's index must still have that row's name, its position must exist). Pages through them by
 * id; keeps the first `reported`.
 */
export async function findChangedProcesses(
  db: Queryable,
  registry: Registry,
  o: { reported?: number; signal?: AbortSignal } = {},
): Promise<{ checked: number; changedCount: number; changed: ChangedProcess[] }> {
  const reported = o.reported ?? 100;
  const changed: ChangedProcess[] = [];
  let checked = 0;
  let changedCount = 0;
  for (let after: string | null = null; ;) {
    o.signal?.throwIfAborted();
    const page = await unendedPositions(db, after, PAGE);
    for (const p of page) {
      checked++;
      const def = registry.get(p.workflowName);
      const problem = def
        ? positionProblem(def, p)
        : `workflow ${p.workflowName} is not registered`;
      if (!problem) continue;
      changedCount++;
      const startedOn = p.workflowVersion;
      const current = def?.version ?? null;
      const versions =
        startedOn || current
          ? ` (started on version ${startedOn ?? 'unnamed'}, now ${current ?? 'unnamed'})`
          : '';
      if (changed.length < reported)
        changed.push({
          id: p.id,
          workflow: p.workflowName,
          status: p.status,
          reason: problem + versions,
          startedOn,
          current,
        });
    }
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.id;
  }
  return { checked, changedCount, changed };
}
