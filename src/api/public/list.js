// #/ : the processes, filtered by status and workflow, changing as processes move; "Resume all
// failed tasks" (failed, waiting, api_unavailable and inconsistent_data tasks) with its count.
import { el } from './forms.js';
import { api, debounce, errorLine, STATUSES, statusPill, time, view } from './page.js';

/** Renders the list for `params` (status, workflow) within `visit` (see page.js). */
export async function listPage(params, visit) {
  const status = params.get('status') ?? '';
  const workflow = params.get('workflow') ?? '';
  const assignee = params.get('assignee') ?? '';
  const workflows = await api('GET', '/api/workflows');
  if (!visit.alive()) return;
  const filter = (name, value, options) =>
    el('label', {}, [
      `${name} `,
      el(
        'select',
        { id: `filter-${name}`, name },
        [['', 'all'], ...options.map((o) => [o, o])].map(([v, t]) =>
          el('option', { value: v, text: t, selected: v === value }),
        ),
      ),
    ]);
  const totalText = el('span', { id: 'total', class: 'muted' });
  const filters = el('div', { class: 'filters' }, [
    filter('status', status, STATUSES),
    filter(
      'workflow',
      workflow,
      workflows.map((w) => w.name),
    ),
    el('label', {}, [
      'assignee ',
      el('input', {
        id: 'filter-assignee',
        name: 'assignee',
        value: assignee,
        placeholder: 'a role',
        size: 10,
      }),
    ]),
    totalText,
  ]);
  filters.addEventListener('change', () => {
    const q = new URLSearchParams();
    for (const s of filters.querySelectorAll('select, input')) if (s.value) q.set(s.name, s.value);
    location.hash = `#/?${q}`;
  });
  const body = el('tbody');
  const table = el('table', { id: 'processes' }, [
    el('thead', {}, [
      el(
        'tr',
        {},
        ['Process', 'Workflow', 'Status', 'Last step', 'Assignee', 'Started', 'Modified'].map((h) =>
          el('th', { text: h }),
        ),
      ),
    ]),
    body,
  ]);
  view.replaceChildren(el('h1', { text: 'Processes' }), resumeAll(visit), filters, table);

  const rows = new Map();
  const row = (p) => {
    const tr = el('tr', { 'data-id': p.id }, [
      el('td', {}, [el('a', { href: `#/process/${p.id}`, class: 'mono', text: p.id.slice(0, 8) })]),
      el('td', { text: p.workflowName }),
      el('td', {}, [statusPill(p.status)]),
      el('td', { text: p.lastStep ?? '' }),
      el('td', { text: p.assignee ?? '' }),
      el('td', { text: p.startedAt ? new Date(p.startedAt).toLocaleString() : '' }),
      el('td', { text: time(p.lastModifiedAt) }),
    ]);
    return tr;
  };
  const query = new URLSearchParams({ limit: '100' });
  if (status) query.set('status', status);
  if (workflow) query.set('workflow', workflow);
  if (assignee) query.set('assignee', assignee);
  const load = async () => {
    const { items, total } = await api('GET', `/api/processes?${query}`);
    rows.clear();
    body.replaceChildren(
      ...items.map((p) => {
        const tr = row(p);
        rows.set(p.id, { tr, p });
        return tr;
      }),
    );
    totalText.textContent = `${total} process${total === 1 ? '' : 'es'}`;
  };
  const reload = debounce(() => {
    load().catch(visit.showError);
  }, 150);
  visit.on({
    'process:updated': (e) => {
      // Events do not carry the assignee: a list filtered by it, and a process that arrives at
      // an input step, are read again; one that leaves it has none.
      if (assignee) return reload();
      const known = rows.get(e.id);
      const matches =
        (!status || e.status === status) && (!workflow || e.workflowName === workflow);
      if (known && matches && !(e.status === 'suspended' && known.p.status !== 'suspended')) {
        const p = { ...known.p, ...e, ...(e.status !== 'suspended' ? { assignee: null } : {}) };
        const tr = row(p);
        tr.classList.add('flash');
        known.tr.replaceWith(tr);
        rows.set(e.id, { tr, p });
      } else if (known || matches) {
        reload(); // joins or leaves the filtered list: let the server order and count it
      }
    },
    resync: reload,
  });
  visit.subscribe({ room: 'processes' }, reload);
}

/**
 * The "Retry stopped tasks" button (PUT /api/processes/resume-all) and what the API answered: the
 * count, or why not. It says which tasks it retries: failed, api_unavailable and inconsistent_data
 * ones, and waiting ones (a retry or a sleep, at once), never one waiting for its children.
 */
function resumeAll(visit) {
  const result = el('span', { id: 'resume-all-result', role: 'status' });
  const what =
    'Retries every task that is failed, api_unavailable or inconsistent_data, and wakes every task waiting for a retry or a sleep; a task waiting for its child processes is left to them';
  const button = el('button', {
    type: 'button',
    id: 'resume-all',
    text: 'Retry stopped tasks',
    title: what,
    'aria-describedby': 'resume-all-what',
  });
  const hint = el('span', { id: 'resume-all-what', class: 'muted', text: what });
  button.addEventListener('click', async () => {
    button.disabled = true;
    result.className = 'muted';
    result.textContent = 'Resuming…';
    try {
      const { count } = await api('PUT', '/api/processes/resume-all');
      if (!visit.alive()) return;
      result.textContent =
        count === 0 ? 'No tasks to resume' : `Resumed ${count} task${count === 1 ? '' : 's'}`;
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
