// The list's state as the URL keeps it (#/?page=3&size=50&sort=startedAt:desc&search=…), so a
// reload or a link shows the same page, and as GET /api/processes takes it.

export const PAGE_SIZES = [25, 50, 100];
/** Columns the API sorts by, with their header text. */
export const SORTABLE = {
  workflowName: 'Workflow',
  status: 'Status',
  startedAt: 'Started',
  lastModifiedAt: 'Modified',
};
/** Filters kept in the URL under the API's own names (kind and page are the page's). */
const PASSED = [
  'status',
  'workflow',
  'assignee',
  'createdBy',
  'search',
  'startedAfter',
  'startedBefore',
];

/** The list state of the URL's query: every field present, defaults filled in. */
export function readState(params) {
  const size = Number(params.get('size'));
  const page = Math.max(1, Math.floor(Number(params.get('page')) || 1));
  const sort = params.get('sort') ?? '';
  const [field, order] = sort.split(':');
  const state = {
    page,
    size: PAGE_SIZES.includes(size) ? size : PAGE_SIZES[0],
    sortField: field in SORTABLE ? field : 'startedAt',
    sortOrder: order === 'asc' ? 'asc' : 'desc',
    kind: ['workflows', 'tasks'].includes(params.get('kind')) ? params.get('kind') : 'all',
    topLevel: params.get('topLevel') === 'true',
  };
  for (const k of PASSED) state[k] = params.get(k) ?? '';
  return state;
}

/** The URL query of `state`, defaults left out. */
export function urlQuery(state) {
  const q = new URLSearchParams();
  for (const k of PASSED) if (state[k]) q.set(k, state[k]);
  if (state.kind !== 'all') q.set('kind', state.kind);
  if (state.topLevel) q.set('topLevel', 'true');
  if (state.sortField !== 'startedAt' || state.sortOrder !== 'desc')
    q.set('sort', `${state.sortField}:${state.sortOrder}`);
  if (state.size !== PAGE_SIZES[0]) q.set('size', String(state.size));
  if (state.page > 1) q.set('page', String(state.page));
  return q;
}

/** The query of GET /api/processes for `state` (a datetime-local value read as local time). */
export function apiQuery(state) {
  const q = new URLSearchParams({
    limit: String(state.size),
    offset: String((state.page - 1) * state.size),
    sort: `${state.sortField}:${state.sortOrder}`,
  });
  for (const k of ['status', 'workflow', 'assignee', 'createdBy', 'search'])
    if (state[k].trim()) q.set(k, state[k].trim());
  for (const k of ['startedAfter', 'startedBefore']) {
    const t = state[k] ? new Date(state[k]) : null;
    if (t && !Number.isNaN(t.getTime())) q.set(k, t.toISOString());
  }
  if (state.kind !== 'all') q.set('isTask', String(state.kind === 'tasks'));
  if (state.topLevel) q.set('topLevel', 'true');
  return q;
}

/** Whether a live event's process belongs to the list of `state` as far as the event tells. */
export function eventMatches(state, e) {
  const statuses = state.status ? state.status.split(',') : [];
  return (
    (statuses.length === 0 || statuses.includes(e.status)) &&
    (!state.workflow || e.workflowName === state.workflow) &&
    (state.kind === 'all' || e.isTask === (state.kind === 'tasks'))
  );
}
