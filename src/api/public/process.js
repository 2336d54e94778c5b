// #/process/<id> : one process, its steps appearing as they commit (a step group's steps under
// the group's name), its state, the retry time of a waiting process, the callback of one awaiting
// it (URL, expiry, progress), the form of a suspended process (page by page), abort/retry, delete
// (tasks), the note (shown, edited, cleared; live from other pages) and the locks held or awaited.
import { el } from './forms.js';
import { api, debounce, errorLine, statusPill, time, untilText, view } from './page.js';
import { noteEditor } from './note.js';
import { pagedForm } from './paged-form.js';

/** Statuses the retry button applies to (resume without input). */
const RETRYABLE = ['failed', 'waiting', 'api_unavailable', 'inconsistent_data'];
const FINISHED = ['completed', 'aborted'];
const STEP_COLUMNS = ['#', 'Step', 'Status', 'Started', 'Completed', 'Retries', 'Changed'];

export async function processPage(id, visit) {
  const header = el('div');
  const actions = el('div', { class: 'actions' });
  // What an action was answered when it failed (409 process_running, 400 not_a_task, …).
  const actionError = el('div', { id: 'action-error', class: 'error', role: 'alert' });
  const note = noteEditor(id, visit);
  const locksBox = el('div', { id: 'locks-box' });
  const callbackBox = el('div', { id: 'callback-box' });
  const formBox = el('div', { id: 'resume-box' });
  const stepsBody = el('tbody');
  const state = el('pre', { id: 'current-state' });
  view.replaceChildren(
    header,
    actions,
    actionError,
    note.node,
    locksBox,
    callbackBox,
    formBox,
    el('h2', { text: 'Steps' }),
    el('table', { id: 'steps' }, [
      el('thead', {}, [
        el(
          'tr',
          {},
          STEP_COLUMNS.map((h) => el('th', { text: h })),
        ),
      ]),
      stepsBody,
    ]),
    el('h2', { text: 'Current state' }),
    state,
  );
  let shownForm = '';

  /** Step groups by step index, from the workflow: a step shown from its event has no group. */
  let groupAt = [];
  const stepIndex = (s) => s.index ?? s.stepIndex;
  const groupOf = (s) => s.group ?? groupAt[stepIndex(s)] ?? null;

  const stepRow = (s) =>
    el('tr', { 'data-step': s.id ?? '', class: groupOf(s) ? 'step in-group' : 'step' }, [
      el('td', { text: String(stepIndex(s)) }),
      el('td', { text: s.name }),
      el('td', {}, [statusPill(s.status)]),
      el('td', { text: time(s.startedAt) }),
      el('td', { text: time(s.completedAt) }),
      el('td', { text: String(s.retries ?? 0) }),
      el('td', { class: 'mono', text: s.stateDelta ? JSON.stringify(s.stateDelta) : '' }),
    ]);

  /** The step rows, consecutive steps of one group under a row with the group's name. */
  let steps = [];
  function showSteps() {
    const rows = [];
    let group = null;
    for (const s of steps) {
      const g = groupOf(s);
      if (g && g !== group) {
        rows.push(
          el('tr', { class: 'group-head', 'data-group': g }, [
            el('th', { colspan: STEP_COLUMNS.length, text: g }),
          ]),
        );
      }
      group = g;
      rows.push(stepRow(s));
    }
    stepsBody.replaceChildren(...rows);
  }

  const button = (text, cls, fn) => {
    const b = el('button', { type: 'button', class: cls, text });
    b.addEventListener('click', async () => {
      b.disabled = true;
      actionError.textContent = '';
      try {
        await fn();
      } catch (err) {
        if (visit.alive()) actionError.textContent = errorLine(err);
      } finally {
        b.disabled = false;
      }
    });
    return b;
  };

  /** "retry at 12:00:05 (in 4 s)", kept current by the countdown below. */
  const retryText = (p) => `retry at ${time(p.retryAt)} (${untilText(p.retryAt)})`;

  function showHeader(p) {
    const waiting = p.status === 'waiting' && p.retryAt;
    header.replaceChildren(
      el('h1', {}, [`${p.workflowName} `, el('span', { class: 'mono muted', text: p.id })]),
      el('p', {}, [
        'Status ',
        el('span', { id: 'process-status', class: `status status-${p.status}`, text: p.status }),
        waiting ? ' · ' : '',
        waiting
          ? el('span', {
              id: 'retry-at',
              'data-at': p.retryAt,
              title: new Date(p.retryAt).toLocaleString(),
              text: retryText(p),
            })
          : '',
        p.lastStep ? ` · last step ${p.lastStep}` : '',
        p.failedReason ? ` · ${p.failedReason}` : '',
      ]),
    );
    const buttons = [];
    if (RETRYABLE.includes(p.status)) {
      const text = p.status === 'waiting' ? 'Retry now' : 'Retry';
      buttons.push(button(text, 'primary', () => api('PUT', `/api/processes/${id}/resume`, {})));
    }
    if (!FINISHED.includes(p.status)) {
      buttons.push(button('Abort', 'danger', () => api('PUT', `/api/processes/${id}/abort`)));
    }
    // Only tasks are deleted, and not while they run (the API answers 400 / 409 otherwise).
    if (p.isTask && p.status !== 'running') {
      buttons.push(
        button('Delete', 'danger', async () => {
          if (!window.confirm(`Delete task ${p.workflowName} ${id} with its steps?`)) return;
          await api('DELETE', `/api/processes/${id}`);
          if (visit.alive()) location.hash = '#/';
        }),
      );
    }
    actions.replaceChildren(...buttons);
  }

  /** The resource locks of a workflow with lockKeys: held, and waited for (lockMode queue). */
  function showLocks(p) {
    const held = p.locks?.held ?? [];
    const waitingFor = p.locks?.waitingFor ?? [];
    if (held.length === 0 && waitingFor.length === 0) return locksBox.replaceChildren();
    const keys = (list, cls) =>
      list.length
        ? el(
            'span',
            { class: cls },
            list.map((k) => el('code', { class: 'lock-key mono', text: k })),
          )
        : el('span', { class: `${cls} muted`, text: 'none' });
    locksBox.replaceChildren(
      el('h2', { text: 'Locks' }),
      el('dl', { class: 'facts', id: 'locks' }, [
        el('dt', { text: 'Holds' }),
        el('dd', {}, [keys(held, 'locks-held')]),
        el('dt', { text: 'Waiting for' }),
        el('dd', {}, [keys(waitingFor, 'locks-waiting')]),
      ]),
    );
  }

  /** The latest callback: where to post while it is pending, until when, and its progress. */
  function showCallback(p) {
    const cb = p.callback;
    if (!cb) return callbackBox.replaceChildren();
    const pending = p.status === 'awaiting_callback' && cb.status === 'pending';
    const url =
      typeof p.currentState?.callbackUrl === 'string' ? p.currentState.callbackUrl : cb.path;
    const rows = [
      [
        'Status',
        el('span', {
          id: 'callback-status',
          class: `status status-cb-${cb.status}`,
          text: cb.status,
        }),
      ],
    ];
    if (pending) {
      rows.push(['URL', el('code', { id: 'callback-url', class: 'mono', text: url })]);
      if (cb.expiresAt) {
        rows.push([
          'Expires',
          el('span', {
            id: 'callback-expires',
            'data-at': cb.expiresAt,
            title: new Date(cb.expiresAt).toLocaleString(),
            text: `${time(cb.expiresAt)} (${untilText(cb.expiresAt)})`,
          }),
        ]);
      }
    } else if (cb.resolvedAt) {
      rows.push(['Resolved', el('span', { text: new Date(cb.resolvedAt).toLocaleString() })]);
    }
    if (cb.progress !== null && cb.progress !== undefined) {
      rows.push([
        'Progress',
        el('div', { id: 'callback-progress' }, [
          progressView(cb.progress),
          cb.progressAt ? el('div', { class: 'muted', text: `at ${time(cb.progressAt)}` }) : '',
        ]),
      ]);
    }
    callbackBox.replaceChildren(
      el('h2', { text: 'Callback' }),
      el(
        'dl',
        { class: 'facts' },
        rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, [v])]),
      ),
    );
  }

  function showForm(p) {
    const key = p.form ? `${p.status}:${p.stepIndex}` : '';
    if (key === shownForm) return;
    shownForm = key;
    if (!p.form) return formBox.replaceChildren();
    const form = pagedForm({
      id: 'resume-form',
      schema: p.form,
      pages: p.formPages,
      submitText: 'Submit and resume',
      // 204: the process moves on; its events bring the page along.
      send: (body) => api('PUT', `/api/processes/${id}/resume`, body),
    });
    formBox.replaceChildren(el('h2', { text: `Input: ${p.lastStep ?? ''}` }), form);
  }

  /** The process as last shown. */
  let shown;
  const load = async () => {
    const p = await api('GET', `/api/processes/${id}`);
    if (!visit.alive()) return;
    if (!shown) {
      try {
        const w = await api('GET', `/api/workflows/${encodeURIComponent(p.workflowName)}`);
        groupAt = (w.steps ?? []).map((s) => s.group ?? null);
      } catch {
        groupAt = []; // a workflow no longer loaded: its steps still show, ungrouped
      }
    }
    shown = p;
    showHeader(p);
    note.show(p);
    showLocks(p);
    showCallback(p);
    showForm(p);
    steps = p.steps;
    showSteps();
    state.textContent = JSON.stringify(p.currentState, null, 2);
  };
  const reload = debounce(() => {
    load().catch(visit.showError);
  }, 100);

  // Countdowns to the retry and to the callback's expiry.
  visit.every(1000, () => {
    for (const node of view.querySelectorAll('#retry-at, #callback-expires')) {
      const at = node.dataset.at;
      node.textContent =
        node.id === 'retry-at' ? retryText({ retryAt: at }) : `${time(at)} (${untilText(at)})`;
    }
  });

  visit.on({
    // A committed step shows at once; the full row (state delta) follows with the refetch.
    'process:step': (s) => {
      if (s.processId !== id) return;
      if (!steps.some((known) => known.id === s.id)) {
        steps = [...steps, s];
        showSteps();
      }
      reload();
    },
    'process:updated': (e) => {
      if (e.id !== id) return;
      // Status and buttons follow at once; steps, state, callback progress and form with the
      // refetch.
      if (shown) showHeader((shown = { ...shown, ...e }));
      reload();
    },
    resync: reload,
  });
  visit.subscribe({ processId: id }, reload);
}

/** Callback progress: a bar when it has a numeric `percent`, and the rest as JSON. */
function progressView(progress) {
  const percent =
    progress && typeof progress === 'object' && typeof progress.percent === 'number'
      ? Math.max(0, Math.min(100, progress.percent))
      : null;
  const rest =
    percent === null
      ? progress
      : Object.fromEntries(Object.entries(progress).filter(([k]) => k !== 'percent'));
  const json =
    percent !== null && Object.keys(rest).length === 0
      ? null
      : el('pre', { class: 'progress-json', text: JSON.stringify(rest, null, 2) });
  if (percent === null) return json;
  return el('div', {}, [
    el('div', { class: 'progress-bar', role: 'progressbar', 'aria-valuenow': percent }, [
      el('div', { class: 'progress-fill', style: `width: ${percent}%` }),
    ]),
    el('span', { class: 'progress-percent', text: `${percent}%` }),
    json,
  ]);
}
