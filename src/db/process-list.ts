import type { ProcessStatus } from './model.ts';
import type { Queryable } from './pool.ts';
import { PROCESS_COLUMNS, type ProcessRow } from './processes.ts';

export interface ProcessFilter {
  status?: ProcessStatus[] | undefined;
  workflow?: string | undefined;
  isTask?: boolean | undefined;
  createdBy?: string | undefined;
  /** Suspended at an input step assigned to this role. */
  assignee?: string | undefined;
}

/** Sortable fields and their columns (the only text that enters ORDER BY). */
export const SORT_COLUMNS = {
  startedAt: 'p.started_at',
  lastModifiedAt: 'p.last_modified_at',
  status: 'p.status',
  workflowName: 'p.workflow_name',
  lastStep: 'p.last_step',
} as const;
export type SortField = keyof typeof SORT_COLUMNS;

export interface ListQuery extends ProcessFilter {
  limit: number;
  offset: number;
  sort: SortField;
  order: 'asc' | 'desc';
}

function where(f: ProcessFilter): { sql: string; values: unknown[] } {
  const clauses: string[] = [];
  const values: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    values.push(v);
    clauses.push(sql.replace('?', `$${values.length}`));
  };
  if (f.status?.length) add('p.status = ANY(?::text[])', f.status);
  if (f.workflow !== undefined) add('p.workflow_name = ?', f.workflow);
  if (f.isTask !== undefined) add('p.is_task = ?', f.isTask);
  if (f.createdBy !== undefined) add('p.created_by = ?', f.createdBy);
  if (f.assignee !== undefined) add('p.assignee = ?', f.assignee);
  return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', values };
}

export async function listProcesses(
  db: Queryable,
  q: ListQuery,
): Promise<{ items: ProcessRow[]; total: number }> {
  const w = where(q);
  const order = `${SORT_COLUMNS[q.sort]} ${q.order === 'asc' ? 'ASC' : 'DESC'}, p.id`;
  const n = w.values.length;
  const [items, total] = await Promise.all([
    db.query<ProcessRow>(
      `SELECT ${PROCESS_COLUMNS} FROM orchestrator.processes p ${w.sql} ORDER BY ${order} LIMIT $${n + 1} OFFSET $${n + 2}`,
      [...w.values, q.limit, q.offset],
    ),
    db.query<{ total: number }>(
      `SELECT count(*) AS total FROM orchestrator.processes p ${w.sql}`,
      w.values,
    ),
  ]);
  return { items: items.rows, total: total.rows[0]?.total ?? 0 };
}

export async function statusCounts(db: Queryable): Promise<{
  processCounts: Record<string, number>;
  taskCounts: Record<string, number>;
}> {
  // Kept exact by triggers (sql/004_perf.sql): a few hundred rows, not a scan of every process.
  const { rows } = await db.query<{ status: string; isTask: boolean; n: number }>({
    name: 'orchestrator-status-counts',
    text: `SELECT status, is_task AS "isTask", sum(n)::bigint AS n FROM orchestrator.status_counts
            GROUP BY status, is_task HAVING sum(n) <> 0`,
  });
  const processCounts: Record<string, number> = {};
  const taskCounts: Record<string, number> = {};
  for (const r of rows) (r.isTask ? taskCounts : processCounts)[r.status] = r.n;
  return { processCounts, taskCounts };
}
