// The live view: a hash-routed page over the REST API, kept current by Socket.IO events.
//   #/                 processes, filtered by status and workflow
//   #/start[/<name>]   start a workflow from its input form
//   #/process/<id>     one process: steps as they commit, state, resume form, abort/retry
import { el, errorText, readFields, renderFields } from './forms.js';

const STATUSES = [
  'created',
  'running',
  'suspended',
  'waiting',
  'awaiting_callback',
  'resumed',
  'completed',
  'aborted',
  'failed',
  'api_unavailable',
  'inconsistent_data',
];
/** Statuses the retry button applies to (resume without input). */
const RETRYABLE = ['failed', 'waiting', 'api_unavailable', 'inconsistent_data'];
const FINISHED = ['completed', 'aborted'];

const view = document.getElementById('view');
const socket = io({ transports: ['websocket', 'polling'] });
/** Teardown of the current page: its socket handlers and subscriptions. */
let leave = () => {};
/** Counts page changes: work started for an earlier page must not touch the current one. */
let generation = 0;

/** Wraps `fn` so that it does nothing once the page it was made for has been left. */
function forThisPage(fn, g) {
  return (...args) => (g === generation ? fn(...args) : undefined);
}

/** Shows `err` in place of the page, unless the page has been left meanwhile. */
const showError = (g) => (err) => {
  if (g === generation) view.replaceChildren(el('p', { class: 'error', text: err.message }));
};

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw Object.assign(new Error(errorText(data, res.status)), { status: res.status });
  return data;
}

const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');
const statusPill = (status) => el('span', { class: `status status-${status}`, text: status });

/** Calls `fn` at most once per `ms`, after the last call. */
function debounce(fn, ms) {
  let timer;
  return () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(fn, ms);
  };
}

/** Registers socket handlers for the current page; removed when the page changes. */
function on(raw, g) {
  const handlers = Object.fromEntries(
    Object.entries(raw).map(([event, fn]) => [event, forThisPage(fn, g)]),
  );
  for (const [event, fn] of Object.entries(handlers)) socket.on(event, fn);
  const prev = leave;
  leave = () => {
    prev();
    for (const [event, fn] of Object.entries(handlers)) socket.off(event, fn);
  };
}

/**
 * Subscribes now and after every reconnect of the socket, calling `refetch` once each
 * subscription is acknowledged: only then can no event be missed between the fetch and the
 * subscription. Unsubscribes on leaving the page.
 */
function subscribe(sub, refetch, g) {
  const later = forThisPage(refetch, g);
  const send = () => socket.emit('subscribe', sub, () => later());
  if (socket.connected) send();
  else later(); // shows what there is now; the subscription's ack refetches on connect
  on({ connect: send }, g);
  const prev = leave;
  leave = () => {
    prev();
    socket.emit('unsubscribe', sub, () => {});
  };
}

// ---- engine status (header) ----
const engineBadge = document.getElementById('engine-status');
const engineToggle = document.getElementById('engine-toggle');
const connection = document.getElementById('connection');
let engine;

function showEngine(status) {
  engine = status;
  engineBadge.textContent = status.engineStatus;
  engineBadge.className = `badge ${status.engineStatus}`;
  engineBadge.title = `${status.runningProcesses} running`;
  engineToggle.hidden = false;
  engineToggle.textContent = status.globalLock ? 'Resume engine' : 'Pause engine';
}
engineToggle.addEventListener('click', async () => {
  try {
    showEngine(await api('PUT', '/api/settings/status', { globalLock: !engine?.globalLock }));
  } catch (err) {
    window.alert(err.message);
  }
});
socket.on('engine:status', showEngine);
socket.on('connect', () => {
  connection.textContent = 'live';
  connection.className = 'badge online';
});
socket.on('disconnect', () => {
  connection.textContent = 'offline';
  connection.className = 'badge offline';
});

// ---- process list ----
async function listPage(params, g) {
  const status = params.get('status') ?? '';
  const workflow = params.get('workflow') ?? '';
  const workflows = await api('GET', '/api/workflows');
  if (g !== generation) return;
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
    totalText,
  ]);
  filters.addEventListener('change', () => {
    const q = new URLSearchParams();
    for (const s of filters.querySelectorAll('select')) if (s.value) q.set(s.name, s.value);
    location.hash = `#/?${q}`;
  });
  const body = el('tbody');
  const table = el('table', { id: 'processes' }, [
    el('thead', {}, [
      el(
        'tr',
        {},
        ['Process', 'Workflow', 'Status', 'Last step', 'Started', 'Modified'].map((h) =>
          el('th', { text: h }),
        ),
      ),
    ]),
    body,
  ]);
  view.replaceChildren(el('h1', { text: 'Processes' }), filters, table);

  const rows = new Map();
  const row = (p) => {
    const tr = el('tr', { 'data-id': p.id }, [
      el('td', {}, [el('a', { href: `#/process/${p.id}`, class: 'mono', text: p.id.slice(0, 8) })]),
      el('td', { text: p.workflowName }),
      el('td', {}, [statusPill(p.status)]),
      el('td', { text: p.lastStep ?? '' }),
      el('td', { text: p.startedAt ? new Date(p.startedAt).toLocaleString() : '' }),
      el('td', { text: time(p.lastModifiedAt) }),
    ]);
    return tr;
  };
  const query = new URLSearchParams({ limit: '100' });
  if (status) query.set('status', status);
  if (workflow) query.set('workflow', workflow);
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
    load().catch(showError(g));
  }, 150);
  on(
    {
      'process:updated': (e) => {
        const known = rows.get(e.id);
        const matches =
          (!status || e.status === status) && (!workflow || e.workflowName === workflow);
        if (known && matches) {
          const p = { ...known.p, ...e };
          const tr = row(p);
          tr.classList.add('flash');
          known.tr.replaceWith(tr);
          rows.set(e.id, { tr, p });
        } else if (known || matches) {
          reload(); // joins or leaves the filtered list: let the server order and count it
        }
      },
      resync: reload,
    },
    g,
  );
  subscribe({ room: 'processes' }, reload, g);
}

// ---- start a workflow ----
async function startPage(name, g) {
  const workflows = await api('GET', '/api/workflows');
  if (g !== generation) return;
  const chosen = workflows.find((w) => w.name === name) ?? workflows[0];
  const select = el(
    'select',
    { id: 'start-workflow' },
    workflows.map((w) =>
      el('option', { value: w.name, text: w.name, selected: w.name === chosen?.name }),
    ),
  );
  select.addEventListener('change', () => (location.hash = `#/start/${select.value}`));
  const error = el('div', { class: 'error', id: 'start-error' });
  const form = el('form', { class: 'schema-form', id: 'start-form' }, [
    el('div', { class: 'actions' }, [
      el('button', { type: 'submit', class: 'primary', text: 'Start' }),
    ]),
    error,
  ]);
  if (chosen) renderFields(form, chosen.inputSchema);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    try {
      const { id } = await api(
        'POST',
        `/api/processes/${chosen.name}`,
        readFields(form, chosen.inputSchema),
      );
      location.hash = `#/process/${id}`;
    } catch (err) {
      error.textContent = err.message;
    }
  });
  view.replaceChildren(
    el('h1', { text: 'Start a workflow' }),
    el('label', {}, ['Workflow ', select]),
    el('p', { class: 'muted', text: chosen?.description ?? '' }),
    form,
  );
}

// ---- one process ----
async function processPage(id, g) {
  const header = el('div');
  const actions = el('div', { class: 'actions' });
  const formBox = el('div', { id: 'resume-box' });
  const stepsBody = el('tbody');
  const state = el('pre', { id: 'current-state' });
  view.replaceChildren(
    header,
    actions,
    formBox,
    el('h2', { text: 'Steps' }),
    el('table', { id: 'steps' }, [
      el('thead', {}, [
        el(
          'tr',
          {},
          ['#', 'Step', 'Status', 'Started', 'Completed', 'Retries', 'Changed'].map((h) =>
            el('th', { text: h }),
          ),
        ),
      ]),
      stepsBody,
    ]),
    el('h2', { text: 'Current state' }),
    state,
  );
  let shownForm = '';

  const stepRow = (s) =>
    el('tr', { 'data-step': s.id ?? '', class: 'step' }, [
      el('td', { text: String(s.index ?? s.stepIndex) }),
      el('td', { text: s.name }),
      el('td', {}, [statusPill(s.status)]),
      el('td', { text: time(s.startedAt) }),
      el('td', { text: time(s.completedAt) }),
      el('td', { text: String(s.retries ?? 0) }),
      el('td', { class: 'mono', text: s.stateDelta ? JSON.stringify(s.stateDelta) : '' }),
    ]);

  const button = (text, cls, fn) => {
    const b = el('button', { type: 'button', class: cls, text });
    b.addEventListener('click', async () => {
      b.disabled = true;
      try {
        await fn();
      } catch (err) {
        window.alert(err.message);
      } finally {
        b.disabled = false;
      }
    });
    return b;
  };

  function showHeader(p) {
    header.replaceChildren(
      el('h1', {}, [`${p.workflowName} `, el('span', { class: 'mono muted', text: p.id })]),
      el('p', {}, [
        'Status ',
        el('span', { id: 'process-status', class: `status status-${p.status}`, text: p.status }),
        p.lastStep ? ` · last step ${p.lastStep}` : '',
        p.failedReason ? ` · ${p.failedReason}` : '',
      ]),
    );
    const buttons = [];
    if (RETRYABLE.includes(p.status)) {
      buttons.push(button('Retry', 'primary', () => api('PUT', `/api/processes/${id}/resume`, {})));
    }
    if (!FINISHED.includes(p.status)) {
      buttons.push(button('Abort', 'danger', () => api('PUT', `/api/processes/${id}/abort`)));
    }
    actions.replaceChildren(...buttons);
  }

  function showForm(p) {
    const key = p.form ? `${p.status}:${p.stepIndex}` : '';
    if (key === shownForm) return;
    shownForm = key;
    if (!p.form) return formBox.replaceChildren();
    const error = el('div', { class: 'error' });
    const form = el('form', { class: 'schema-form', id: 'resume-form' }, [
      el('div', { class: 'actions' }, [
        el('button', { type: 'submit', class: 'primary', text: 'Submit and resume' }),
      ]),
      error,
    ]);
    renderFields(form, p.form);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      try {
        await api('PUT', `/api/processes/${id}/resume`, readFields(form, p.form));
      } catch (err) {
        error.textContent = err.message;
      }
    });
    formBox.replaceChildren(el('h2', { text: `Input: ${p.lastStep ?? ''}` }), form);
  }

  /** The process as last shown. */
  let shown;
  const load = async () => {
    const p = await api('GET', `/api/processes/${id}`);
    shown = p;
    showHeader(p);
    showForm(p);
    stepsBody.replaceChildren(...p.steps.map(stepRow));
    state.textContent = JSON.stringify(p.currentState, null, 2);
  };
  const reload = debounce(() => {
    load().catch(showError(g));
  }, 100);

  on(
    {
      // A committed step shows at once; the full row (state delta) follows with the refetch.
      'process:step': (s) => {
        if (s.processId !== id) return;
        if (!stepsBody.querySelector(`tr[data-step="${s.id}"]`)) stepsBody.append(stepRow(s));
        reload();
      },
      'process:updated': (e) => {
        if (e.id !== id) return;
        // Status and buttons follow at once; steps, state and form with the refetch.
        if (shown) showHeader((shown = { ...shown, ...e }));
        reload();
      },
      resync: reload,
    },
    g,
  );
  subscribe({ processId: id }, reload, g);
}

// ---- router ----
async function route() {
  leave();
  leave = () => {};
  const g = ++generation;
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const parts = (path || '/').split('/').filter(Boolean);
  try {
    if (parts[0] === 'process' && parts[1]) await processPage(decodeURIComponent(parts[1]), g);
    else if (parts[0] === 'start') await startPage(parts[1] && decodeURIComponent(parts[1]), g);
    else await listPage(new URLSearchParams(query), g);
  } catch (err) {
    showError(g)(err);
  }
}
window.addEventListener('hashchange', () => void route());
void route();
