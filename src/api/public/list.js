// #/ : find any process. Server-side pages (25/50/100, first/previous/next/last), sorting by the
// columns the API sorts by, a search (id prefix, workflow, creator, note words, a value of the
// current state) and filters that combine (statuses, workflow, workflows or tasks, creator,
// assignee, started between, children hidden under their parent). The whole state is in the URL
// (list-query.js), written with history.pushState/replaceState so that editing a filter keeps its
// focus (no re-render of the form); the rows follow live events. "Retry stopped tasks" asks first.
import { confirmAction, count } from './dialog.js';
import { el } from './forms.js';
import { apiQuery, eventMatches, PAGE_SIZES, readState, SORTABLE, urlQuery } from './list-query.js';
import { announce, api, debounce, errorLine, STATUSES, statusPill, timeEl, view } from './page.js';

export async function listPage(params, visit) {
  const state = readState(params);
  const workflows = await api('GET', '/api/workflows');
  if (!visit.alive()) return;

  const field = (label, id, control) =>
    el('div', { class: 'field' }, [el('label', { for: id, text: label }), control]);
  const input = (name, attrs = {}) =>
    el('input', { id: `filter-${name}`, name, value: state[name], ...attrs });
  const select = (name, options, attrs = {}) =>
    el(
      'select',
      { id: `filter-${name}`, name, ...attrs },
      options.map(([v, t]) => el('option', { value: v, text: t })),
    );
  const statusSelect = select(
    'status',
    STATUSES.map((s) => [s, s]),
    { multiple: true, size: 4 },
  );
  for (const o of statusSelect.options) o.selected = state.status.split(',').includes(o.value);
  const workflowSelect = select('workflow', [
    ['', 'all'],
    ...workflows.map((w) => [w.name, w.name]),
  ]);
  workflowSelect.value = state.workflow;
  const search = el('input', {
    id: 'search',
    name: 'search',
    type: 'search',
    value: state.search,
    placeholder: 'id, workflow, creator, note, device…',
  });
  const topLevel = el('input', { id: 'filter-topLevel', type: 'checkbox', name: 'topLevel' });
  topLevel.checked = state.topLevel;
  const sizeSelect = select(
    'size',
    PAGE_SIZES.map((n) => [String(n), String(n)]),
  );
  sizeSelect.id = 'page-size';
  sizeSelect.value = String(state.size);

  const tabs = el(
    'div',
    { class: 'tabs', role: 'group', 'aria-label': 'Workflows or tasks' },
    [
      ['all', 'All'],
      ['workflows', 'Workflows'],
      ['tasks', 'Tasks'],
    ].map(([k, t]) => {
      const b = el('button', { type: 'button', id: `tab-${k}`, text: t });
      b.addEventListener('click', () => update({ kind: k }));
      return b;
    }),
  );
  const filters = el('form', { class: 'filters', id: 'filters', role: 'search' }, [
    field('Search', 'search', search),
    field('Status', 'filter-status', statusSelect),
    field('Workflow', 'filter-workflow', workflowSelect),
    field('Created by', 'filter-createdBy', input('createdBy', { size: 10 })),
    field('Assignee', 'filter-assignee', input('assignee', { size: 10, placeholder: 'a role' })),
    field(
      'Started from',
      'filter-startedAfter',
      input('startedAfter', { type: 'datetime-local', step: 1 }),
    ),
    field(
      'Started before',
      'filter-startedBefore',
      input('startedBefore', { type: 'datetime-local', step: 1 }),
    ),
    el('div', { class: 'field check' }, [
      topLevel,
      el('label', { for: 'filter-topLevel', text: 'Hide child processes' }),
    ]),
    el('button', { type: 'submit', text: 'Search' }),
  ]);
  const readFilters = () => ({
    search: search.value,
    status: [...statusSelect.selectedOptions].map((o) => o.value).join(','),
    workflow: workflowSelect.value,
    createdBy: filters.elements.createdBy.value,
    assignee: filters.elements.assignee.value,
    startedAfter: filters.elements.startedAfter.value,
    startedBefore: filters.elements.startedBefore.value,
    topLevel: topLevel.checked,
  });
  // Selects and checkboxes apply at once (arrow keys included: the form stays, focus with it);
  // text applies on Enter or after a pause in typing.
  filters.addEventListener('change', (e) => {
    if (e.target.type !== 'search' && e.target.type !== 'text') update(readFilters());
  });
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    update(readFilters());
  });
  const typed = debounce(() => update(readFilters()), 400);
  filters.addEventListener('input', (e) => {
    if (e.target.type === 'search' || e.target.type === 'text') typed();
  });
  sizeSelect.addEventListener('change', () => update({ size: Number(sizeSelect.value) }));

  const body = el('tbody');
  const headRow = el('tr');
  const table = el('table', { id: 'processes' }, [el('thead', {}, [headRow]), body]);
  const pageInfo = el('span', { id: 'page-info' });
  const totalText = el('span', { id: 'total', class: 'muted' });
  const pager = (id, text, label) => {
    const b = el('button', { type: 'button', id, text, 'aria-label': label });
    return b;
  };
  const first = pager('page-first', '«', 'First page');
  const prev = pager('page-prev', '‹', 'Previous page');
  const next = pager('page-next', '›', 'Next page');
  const last = pager('page-last', '»', 'Last page');
  let lastPage = 1;
  first.addEventListener('click', () => update({ page: 1 }, true));
  prev.addEventListener('click', () => update({ page: Math.max(1, state.page - 1) }, true));
  next.addEventListener('click', () => update({ page: Math.min(lastPage, state.page + 1) }, true));
  last.addEventListener('click', () => update({ page: lastPage }, true));
  const pagination = el('nav', { class: 'pagination', 'aria-label': 'Pages' }, [
    first,
    prev,
    pageInfo,
    next,
    last,
    field('Per page', 'page-size', sizeSelect),
    totalText,
  ]);
  view.replaceChildren(
    el('h1', { text: 'Processes' }),
    resumeAll(visit),
    tabs,
    filters,
    pagination,
    el('div', { class: 'table-wrap' }, [table]),
  );

  function showHead() {
    const cols = [
      'Process',
      'workflowName',
      'status',
      'Last step',
      'Creator',
      'startedAt',
      'lastModifiedAt',
      'Note',
    ];
    headRow.replaceChildren(
      ...cols.map((c) => {
        if (!(c in SORTABLE)) return el('th', { scope: 'col', text: c });
        const active = state.sortField === c;
        const order = active && state.sortOrder === 'desc' ? 'asc' : 'desc';
        const b = el('button', {
          type: 'button',
          class: 'sort',
          'data-sort': c,
          text: `${SORTABLE[c]}${active ? (state.sortOrder === 'asc' ? ' ▲' : ' ▼') : ''}`,
        });
        b.addEventListener('click', () =>
          update({ sortField: c, sortOrder: order, page: 1 }, true),
        );
        return el(
          'th',
          {
            scope: 'col',
            'aria-sort': active ? (state.sortOrder === 'asc' ? 'ascending' : 'descending') : 'none',
          },
          [b],
        );
      }),
    );
    for (const k of ['all', 'workflows', 'tasks'])
      document.getElementById(`tab-${k}`)?.setAttribute('aria-pressed', String(state.kind === k));
  }

  /** Applies `changes` to the state; a filter change goes back to page 1. */
  function update(changes, keepPage = false) {
    Object.assign(state, changes);
    if (!keepPage && !('page' in changes)) state.page = 1;
    const hash = `#/?${urlQuery(state)}`;
    if (hash !== location.hash) {
      if (keepPage) history.pushState(null, '', hash);
      else history.replaceState(null, '', hash);
    }
    showHead();
    reload();
  }

  const rows = new Map();
  const row = (p) =>
    el('tr', { 'data-id': p.id }, [
      el('th', { scope: 'row' }, [
        el('a', { href: `#/process/${p.id}`, class: 'mono', text: p.id.slice(0, 8), title: p.id }),
      ]),
      el('td', { text: p.workflowName }),
      el('td', {}, [statusPill(p.status)]),
      el('td', { text: p.lastStep ?? '' }),
      el('td', { text: p.createdBy ?? '' }),
      el('td', {}, [timeEl(p.startedAt)]),
      el('td', {}, [timeEl(p.lastModifiedAt)]),
      el('td', { class: 'note-cell', text: p.note ?? '', title: p.note ?? '' }),
    ]);
  const load = async () => {
    const { items, total, totalCapped } = await api('GET', `/api/processes?${apiQuery(state)}`);
    // A broad search is counted up to a cap: "more than 10,000", pages up to there.
    const found = totalCapped
      ? `more than ${total.toLocaleString()} processes`
      : count(total, 'process', 'processes');
    if (!visit.alive()) return;
    lastPage = Math.max(1, Math.ceil(total / state.size));
    rows.clear();
    body.replaceChildren(
      ...items.map((p) => {
        const tr = row(p);
        rows.set(p.id, { tr, p });
        return tr;
      }),
    );
    if (items.length === 0)
      body.append(
        el('tr', {}, [el('td', { colspan: 8, class: 'muted', text: 'No processes match' })]),
      );
    const from = total === 0 ? 0 : (state.page - 1) * state.size + 1;
    pageInfo.textContent = `Page ${state.page.toLocaleString()} of ${lastPage.toLocaleString()}`;
    totalText.textContent = `${from.toLocaleString()}–${((state.page - 1) * state.size + items.length).toLocaleString()} of ${found}`;
    first.disabled = prev.disabled = state.page <= 1;
    next.disabled = last.disabled = state.page >= lastPage;
    announce(`${found} found, page ${state.page} of ${lastPage}`);
  };
  const reload = debounce(() => {
    load().catch((err) => {
      if (visit.alive()) totalText.textContent = errorLine(err);
    });
  }, 150);
  showHead();
  visit.on({
    'process:updated': (e) => {
      const known = rows.get(e.id);
      if (known && eventMatches(state, e) && !state.assignee) {
        const p = { ...known.p, ...e };
        if (p.status !== known.p.status)
          announce(`${p.workflowName} ${p.id.slice(0, 8)}: ${p.status}`);
        const tr = row(p);
        tr.classList.add('flash');
        known.tr.replaceWith(tr);
        rows.set(e.id, { tr, p });
      } else if (known || (eventMatches(state, e) && state.page === 1 && !state.search)) {
        reload(); // joins or leaves the page shown: let the server order and count it
      }
    },
    resync: reload,
  });
  visit.subscribe({ room: 'processes' }, reload);
}

/**
 * "Retry stopped tasks" (PUT /api/processes/resume-all), after a confirmation that says how many
 * tasks stand to be retried (failed, api_unavailable, inconsistent_data, waiting), and what the
 * API answered: the count, or why not.
 */
function resumeAll(visit) {
  const result = el('span', { id: 'resume-all-result', role: 'status' });
  const what =
    'Retries every task that is failed, api_unavailable or inconsistent_data, and wakes every task waiting for a retry or a sleep; a task waiting for its child processes is left to them';
  const button = el('button', {
    type: 'button',
    id: 'resume-all',
    text: 'Retry stopped tasks',
    'aria-describedby': 'resume-all-what',
  });
  const hint = el('span', { id: 'resume-all-what', class: 'muted', text: what });
  button.addEventListener('click', async () => {
    try {
      const { taskCounts } = await api('GET', '/api/processes/status-counts');
      const n = ['failed', 'api_unavailable', 'inconsistent_data', 'waiting'].reduce(
        (sum, s) => sum + (taskCounts[s] ?? 0),
        0,
      );
      const yes = await confirmAction({
        title: 'Retry stopped tasks?',
        lines: [
          `Up to ${count(n, 'task')} will be retried or woken now (${
            Object.entries(taskCounts)
              .filter(([s]) =>
                ['failed', 'api_unavailable', 'inconsistent_data', 'waiting'].includes(s),
              )
              .map(([s, c]) => `${c} ${s}`)
              .join(', ') || 'none stopped'
          }).`,
          'Tasks waiting for their child processes are left to them.',
        ],
        confirmText: `Retry ${count(n, 'task')}`,
      });
      if (!yes || !visit.alive()) return;
      button.disabled = true;
      result.className = 'muted';
      result.textContent = 'Resuming…';
      const { count: resumed } = await api('PUT', '/api/processes/resume-all');
      if (!visit.alive()) return;
      result.textContent =
        resumed === 0 ? 'No tasks to resume' : `Resumed ${resumed} task${resumed === 1 ? '' : 's'}`;
    } catch (err) {
      if (!visit.alive()) return;
      // 409 already_running: another resume-all holds the lock (its tasks are on their way).
      result.className = 'error';
      result.textContent = errorLine(err);
    } finally {
      button.disabled = false;
    }
  });
  return el('div', { class: 'actions' }, [button, result, hint]);
}
