// The process list (GET /api/processes): filters, the search, sorting, a page and the total.
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
  /** Started at or after. */
  startedAfter?: Date | undefined;
  /** Started before. */
  startedBefore?: Date | undefined;
  /** Only processes no other process started (children hidden under their parent). */
  topLevel?: boolean | undefined;
  /**
   * One text matched against an id prefix (4+ hex digits), a workflow name, a creator, the words
   * of a note, and the string values of the current state (exact, case-sensitive).
   */
  search?: string | undefined;
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

/**
 * The uuid range of an id prefix: `3fa8` gives 3fa80000-… to 3fa8ffff-…; undefined for a text
 * that is no prefix of an id (fewer than 4 hex digits, or other characters).
 */
export function idPrefixRange(text: string): [string, string] | undefined {
  const t = text.trim().toLowerCase();
  if (!/^[0-9a-f-]+$/.test(t)) return undefined;
  const hex = t.replace(/-/g, '');
  if (hex.length < 4 || hex.length > 32) return undefined;
  // Dashes must stand where a uuid has them (8-4-4-4-12).
  const shaped = (h: string) =>
    `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  if (!shaped(hex.padEnd(32, '0')).startsWith(t)) return undefined;
  return [shaped(hex.padEnd(32, '0')), shaped(hex.padEnd(32, 'f'))];
}

/**
 * The search as one OR of branches the planner reads through their indexes (sql/014_search.sql):
 * the primary key (id prefix), processes_workflow_idx, processes_created_by_idx,
 * processes_note_words_idx, and process_steps_values_idx for the state, whose matching process ids
 * come as one array (an InitPlan) so that the OR stays a BitmapOr. Only a process's latest step
 * row is its current state: an older step's value does not match.
 */
function searchClause(text: string, param: (v: unknown) => string): string {
  const s = param(text);
  const branches = [
    `p.workflow_name = ${s}`,
    `p.created_by = ${s}`,
    `(p.note IS NOT NULL AND to_tsvector('simple', p.note) @@ plainto_tsquery('simple', ${s}))`,
    `p.id = ANY (ARRAY(
       SELECT st.process_id FROM orchestrator.process_steps st
        WHERE orchestrator.state_values(st.state) @> jsonb_build_array(${s}::text)
          AND st.id = (SELECT max(x.id) FROM orchestrator.process_steps x
                        WHERE x.process_id = st.process_id)))`,
  ];
  const range = idPrefixRange(text);
  if (range) branches.unshift(`p.id BETWEEN ${param(range[0])}::uuid AND ${param(range[1])}::uuid`);
  return `(${branches.join(' OR ')})`;
}

function where(f: ProcessFilter): { sql: string; values: unknown[] } {
  const clauses: string[] = [];
  const values: unknown[] = [];
  const param = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const add = (sql: string, v: unknown) => clauses.push(sql.replace('?', param(v)));
  if (f.status?.length) add('p.status = ANY(?::text[])', f.status);
  if (f.workflow !== undefined) add('p.workflow_name = ?', f.workflow);
  if (f.isTask !== undefined) add('p.is_task = ?', f.isTask);
  if (f.createdBy !== undefined) add('p.created_by = ?', f.createdBy);
  if (f.assignee !== undefined) add('p.assignee = ?', f.assignee);
  if (f.startedAfter !== undefined) add('p.started_at >= ?', f.startedAfter);
  if (f.startedBefore !== undefined) add('p.started_at < ?', f.startedBefore);
  if (f.topLevel) clauses.push('p.parent_id IS NULL');
  if (f.search !== undefined && f.search.trim() !== '') {
    clauses.push(searchClause(f.search.trim(), param));
  }
  return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', values };
}

/** Filters the status counts answer exactly (kept by triggers): no need to count the rows. */
const countedByStatus = (f: ProcessFilter) =>
  f.workflow === undefined &&
  f.createdBy === undefined &&
  f.assignee === undefined &&
  f.startedAfter === undefined &&
  f.startedBefore === undefined &&
  !f.topLevel &&
  (f.search === undefined || f.search.trim() === '');

/**
 * Counted row by row, a total stops here: counting every one of 200,000 matches of a broad search
 * (a workflow's name) took 400 ms on 1,000,000 processes, for a page of 25.
 */
export const COUNT_CAP = 10_000;

/** The total of a filter the status counts answer (see countedByStatus): exact, no row read. */
async function countByStatus(db: Queryable, q: ListQuery): Promise<number> {
  const { rows } = await db.query<{ total: number }>(
    `SELECT coalesce(sum(n), 0)::int AS total FROM orchestrator.status_counts
      WHERE ($1::text[] IS NULL OR status = ANY($1::text[]))
        AND ($2::boolean IS NULL OR is_task = $2)`,
    [q.status?.length ? q.status : null, q.isTask ?? null],
  );
  return rows[0]?.total ?? 0;
}

/** The matches of `w` counted row by row, up to COUNT_CAP; `capped`: at least that many. */
async function countUpToCap(
  db: Queryable,
  w: ReturnType<typeof where>,
): Promise<{ total: number; capped: boolean }> {
  const { rows } = await db.query<{ total: number }>(
    `SELECT count(*)::int AS total
       FROM (SELECT 1 FROM orchestrator.processes p ${w.sql} LIMIT $${w.values.length + 1}) m`,
    [...w.values, COUNT_CAP + 1],
  );
  const n = rows[0]?.total ?? 0;
  return n > COUNT_CAP ? { total: COUNT_CAP, capped: true } : { total: n, capped: false };
}

export async function listProcesses(
  db: Queryable,
  q: ListQuery,
): Promise<{ items: ProcessRow[]; total: number; totalCapped: boolean }> {
  const w = where(q);
  const n = w.values.length;
  const page = (desc: boolean, limit: number, offset: number) =>
    db.query<ProcessRow>(
      `SELECT ${PROCESS_COLUMNS} FROM orchestrator.processes p ${w.sql}
        ORDER BY ${SORT_COLUMNS[q.sort]} ${desc ? 'DESC' : 'ASC'}, p.id ${desc ? 'DESC' : 'ASC'}
        LIMIT $${n + 1} OFFSET $${n + 2}`,
      [...w.values, limit, offset],
    );
  const desc = q.order !== 'asc';
  if (!countedByStatus(q)) {
    const [items, count] = await Promise.all([page(desc, q.limit, q.offset), countUpToCap(db, w)]);
    return { items: items.rows, total: count.total, totalCapped: count.capped };
  }
  // The total is known without reading the rows: a page past the middle is read from the other
  // end (the last page of a million processes skips 25 index entries, not 999,975), then turned.
  const total = await countByStatus(db, q);
  const fromEnd = total - q.offset - q.limit;
  const items =
    q.offset > total / 2 && fromEnd > -q.limit
      ? (await page(!desc, q.limit + Math.min(0, fromEnd), Math.max(0, fromEnd))).rows.reverse()
      : (await page(desc, q.limit, q.offset)).rows;
  return { items, total, totalCapped: false };
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
