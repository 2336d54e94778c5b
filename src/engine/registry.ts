import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WorkflowDefinition } from './dsl.ts';
import { NotFoundError } from './errors.ts';
import { firstPage, type FormOptions } from './forms.ts';

export interface Registry {
  get(name: string): WorkflowDefinition | undefined;
  /** Like get, but throws `NotFoundError` (code `workflow_not_found`). */
  require(name: string): WorkflowDefinition;
  list(): WorkflowDefinition[];
}

export function createRegistry(definitions: WorkflowDefinition[]): Registry {
  const byName = new Map(definitions.map((d) => [d.name, d]));
  return {
    get: (name) => byName.get(name),
    require(name) {
      const def = byName.get(name);
      if (!def)
        throw new NotFoundError('workflow_not_found', `No workflow named ${JSON.stringify(name)}`);
      return def;
    },
    list: () => [...byName.values()].sort((a, b) => a.name.localeCompare(b.name)),
  };
}

function isDefinition(v: unknown): v is WorkflowDefinition {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'workflow';
}

/**
 * Imports every `.ts`/`.js` file of `dir` (not starting with `_`) and registers its default
 * export. A file that fails to load, exports no workflow, or reuses a name fails with the file named.
 */
export async function loadRegistry(dir: string): Promise<Registry> {
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.(ts|js|mjs)$/.test(f) && !f.endsWith('.d.ts') && !f.startsWith('_'))
    .sort();
  const definitions: WorkflowDefinition[] = [];
  const fileOf = new Map<string, string>();
  for (const file of files) {
    const full = path.join(dir, file);
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(full).href)) as { default?: unknown };
    } catch (err) {
      throw new Error(`Cannot load workflow file ${full}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (!isDefinition(mod.default)) {
      throw new Error(`Workflow file ${full} must export default workflow({...}).step(...)`);
    }
    const def = mod.default;
    // A typed workflow gets its steps from calls after `workflow({...})`: one without any is unfinished.
    if (!Array.isArray(def.steps) || def.steps.length === 0) {
      throw new Error(`Workflow file ${full}: workflow ${def.name} has no steps`);
    }
    const other = fileOf.get(def.name);
    if (other) {
      throw new Error(
        `Duplicate workflow name ${JSON.stringify(def.name)} in ${full} and ${other}`,
      );
    }
    fileOf.set(def.name, full);
    definitions.push(def);
  }
  return createRegistry(definitions);
}

/**
 * The public description of a workflow, with its input as JSON Schema (its first page built
 * within the form's time limit: 504 `form_timeout` past it).
 */
export async function describeWorkflow(def: WorkflowDefinition, options: FormOptions) {
  return {
    name: def.name,
    target: def.target,
    isTask: def.isTask,
    description: def.description,
    /** The start form's first page (a form of several pages asks for the others in turn). */
    inputSchema: await firstPage(def.input, {}, `workflow ${def.name}`, options),
    inputPages: def.input.length,
    steps: def.steps.map((s) => ({
      name: s.name,
      kind: s.kind,
      conditional: s.when.length > 0,
      group: s.group ?? null,
    })),
  };
}

/** Where a process stands, as stored: its next step and its last step row. */
export interface StoredPosition {
  stepIndex: number;
  lastRowName: string | null;
  lastRowIndex: number | null;
}

/**
 * Why a process at `at` cannot continue with `def` (its workflow changed under it), if it cannot:
 * its position is past the last step, or the step at its last row's index has another name.
 */
export function positionProblem(def: WorkflowDefinition, at: StoredPosition): string | undefined {
  if (at.stepIndex > def.steps.length) {
    return `workflow ${def.name} changed: the process is at step ${at.stepIndex} but the workflow has ${def.steps.length} steps`;
  }
  const i = at.lastRowIndex;
  if (i === null || at.lastRowName === 'Abort') return undefined;
  const expected = def.steps[i]?.name;
  if (expected !== at.lastRowName) {
    return `workflow ${def.name} changed: step ${i} was ${JSON.stringify(at.lastRowName)} and is now ${JSON.stringify(expected ?? null)}`;
  }
  return undefined;
}
