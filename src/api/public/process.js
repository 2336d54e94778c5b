// #/process/<id> : one process, its steps appearing as they commit (a step group's steps under
// the group's name; skipped and state-patched steps say by whom), its state, the retry or wake
// time of a waiting process (or the children it waits for), the callback of one awaiting it (URL,
// expiry, progress), the form of a suspended process (page by page), abort/retry, skip step and
// retry with changed state (failed steps), delete (tasks), the note (shown, edited, cleared; live
// from other pages), the locks held or awaited, its child processes (live) or its parent.
import { el } from './forms.js';
import {
  api,
  debounce,
  errorLine,
  RESUMABLE,
  statusPill,
  TERMINAL,
  time,
  untilText,
  view,
} from './page.js';
import { noteEditor } from './note.js';
import { pagedForm } from './paged-form.js';
import { REPAIRABLE, stateEditor } from './repair.js';

/** Statuses the retry button applies to (resume without input). */
// Retried from the page: every resumable status but suspended (its form resumes it) and resumed
// (on its way already); finished: the terminal ones. Both from the engine's sets (/statuses.js).
const RETRYABLE = RESUMABLE.filter((s) => s !== 'suspended' && s !== 'resumed');
const FINISHED = TERMINAL;
const STEP_COLUMNS = [
  '#',
  'Step',
  'Status',
  'Started',
  'Completed',
  'Retries',
  'Changed',
  'Details',
];

/** The children a parent waits for: those not yet completed (a failed one is retried first). */
const going = (c) => !FINISHED.includes(c.status);

export async function processPage(id, visit) {
  const header = el('div');
  const actions = el('div', { class: 'actions' });
  // What an action was answered when it failed (409 process_running, 400 not_a_task, …).
  const actionError = el('div', { id: 'action-error', class: 'error', role: 'alert' });
  const note = noteEditor(id, visit);
  const locksBox = el('div', { id: 'locks-box' });
  const callbackBox = el('div', { id: 'callback-box' });
  const formBox = el('div', { id: 'resume-box' });
  const patchEditor = stateEditor(id, visit);
  const childrenBox = el('div', { id: 'children-box' });
  const stepsBody = el('tbody');
  const state = el('pre', { id: 'current-state' });
  view.replaceChildren(
    header,
    actions,
    actionError,
    patchEditor.node,
    note.node,
    locksBox,
    callbackBox,
    formBox,
    childrenBox,
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

  /**
   * The workflow's steps by index (group, kind: 'sleep', 'children', …, conditional, name): a
   * step shown from its event has no group.
   */
  let workflowSteps = [];
  const stepIndex = (s) => s.index ?? s.stepIndex;
  const groupOf = (s) => s.group ?? workflowSteps[stepIndex(s)]?.group ?? null;
  const kindAt = (index) => workflowSteps[index]?.kind;
  /**
   * A parent waiting for its children: `waiting` at a subProcesses step, without a retry time (a
   * sleep or a retry has one).
   */
  const waitingForChildren = (p) =>
    p.status === 'waiting' &&
    !p.retryAt &&
    (kindAt(p.stepIndex) === 'children' || (p.children ?? []).length > 0);

  /**
   * What a row says besides its status: who skipped a failed step, who patched the state before
   * a retry (a `failed` row named StatePatched), why a step failed, or that a condition skipped it.
   */
  function stepDetails(s, previous) {
    if (s.status === 'failed' && s.error?.name === 'StatePatched') {
      return { kind: 'state-patched', status: 'state patched', text: s.error.message };
    }
    if (s.status === 'skipped') {
      // Skipped by a user: the row after the failed row of its step (PUT …/skip).
      if (previous && stepIndex(previous) === stepIndex(s) && previous.status === 'failed') {
        return { kind: 'skipped-by-user', text: `skipped by ${s.createdBy ?? 'anonymous'}` };
      }
      if (workflowSteps[stepIndex(s)]?.conditional) {
        return { kind: 'condition', text: 'its condition did not hold' };
      }
      return null;
    }
    if (s.status === 'failed' && s.error) {
      const e = s.error;
      const text =
        typeof e === 'object' && e !== null
          ? [e.name, e.message].filter(Boolean).join(': ')
          : String(e);
      return { kind: 'error', text };
    }
    return null;
  }

  function stepRow(s, previous) {
    const details = stepDetails(s, previous);
    const pill = statusPill(s.status);
    if (details?.status) {
      pill.textContent = details.status;
      pill.classList.add(`status-${details.kind}`);
      pill.title = `recorded as ${s.status}`;
    }
    return el(
      'tr',
      {
        'data-step': s.id ?? '',
        'data-kind': details?.kind,
        class: groupOf(s) ? 'step in-group' : 'step',
      },
      [
        el('td', { text: String(stepIndex(s)) }),
        el('td', { text: s.name }),
        el('td', {}, [pill]),
        el('td', { text: time(s.startedAt) }),
        el('td', { text: time(s.completedAt) }),
        el('td', { text: String(s.retries ?? 0) }),
        el('td', { class: 'mono', text: s.stateDelta ? JSON.stringify(s.stateDelta) : '' }),
        el('td', {
          class: details ? `step-details step-${details.kind}` : 'step-details',
          text: details?.text ?? '',
        }),
      ],
    );
  }

  /** The step rows, consecutive steps of one group under a row with the group's name. */
  let steps = [];
  function showSteps() {
    const rows = [];
    let group = null;
    let previous = null;
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
      rows.push(stepRow(s, previous));
      previous = s;
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

  /** "retry at 12:00:05 (in 4 s)" ("wakes at" for a sleep), kept current by the countdown below. */
  const retryText = (at, word) => `${word} ${time(at)} (${untilText(at)})`;

  /** The children started by the step the process stands at (all of them if none match). */
  function childrenHere(p) {
    const all = p.children ?? [];
    const here = all.filter((c) => c.parentStep === p.stepIndex);
    return here.length > 0 ? here : all;
  }

  /** The parent of a child process, as a link (its workflow once fetched). */
  let parentName = null;

  function showHeader(p) {
    const timed = p.status === 'waiting' && p.retryAt;
    const sleeping = timed && kindAt(p.stepIndex) === 'sleep';
    const forChildren = waitingForChildren(p);
    const facts = [];
    if (timed) {
      const word = sleeping ? 'wakes at' : 'retry at';
      facts.push(
        el('span', {
          id: 'retry-at',
          'data-at': p.retryAt,
          'data-word': word,
          title: new Date(p.retryAt).toLocaleString(),
          text: retryText(p.retryAt, word),
        }),
      );
    } else if (forChildren) {
      const children = childrenHere(p);
      facts.push(
        el('span', {
          id: 'waiting-children',
          text:
            children.length > 0
              ? `waiting for ${children.filter(going).length} of ${children.length} child processes`
              : 'waiting for its child processes',
        }),
      );
    }
    if (p.lastStep) facts.push(`last step ${p.lastStep}`);
    if (p.assignee) facts.push(el('span', { id: 'assignee', text: `assigned to ${p.assignee}` }));
    if (p.failedReason) facts.push(el('span', { id: 'failed-reason', text: p.failedReason }));
    if (p.workflowVersion !== null && p.workflowVersion !== undefined) {
      facts.push(el('span', { id: 'workflow-version', text: `version ${p.workflowVersion}` }));
    }
    header.replaceChildren(
      el('h1', {}, [`${p.workflowName} `, el('span', { class: 'mono muted', text: p.id })]),
      el('p', {}, [
        'Status ',
        el('span', { id: 'process-status', class: `status status-${p.status}`, text: p.status }),
        ...facts.flatMap((f) => [' · ', f]),
      ]),
      p.parentId
        ? el('p', { id: 'parent' }, [
            'Child process of ',
            el('a', {
              id: 'parent-link',
              href: `#/process/${encodeURIComponent(p.parentId)}`,
              text: parentName ? `${parentName} ${p.parentId}` : p.parentId,
            }),
          ])
        : '',
    );
    const buttons = [];
    // A parent waiting for its children goes on by itself once they end (a resume is refused).
    if (RETRYABLE.includes(p.status) && !forChildren) {
      const text = p.status !== 'waiting' ? 'Retry' : sleeping ? 'Wake now' : 'Retry now';
      buttons.push(button(text, 'primary', () => api('PUT', `/api/processes/${id}/resume`, {})));
    }
    if (REPAIRABLE.includes(p.status)) {
      const step = p.lastStep ?? `#${p.stepIndex}`;
      buttons.push(
        button('Skip step', '', async () => {
          const question =
            `Skip step "${step}" of ${p.workflowName} ${id}? It is recorded as skipped ` +
            'and the process goes on with the next step.';
          if (!window.confirm(question)) return;
          await api('PUT', `/api/processes/${id}/skip`);
        }),
        button('Retry with changed state', '', async () => {
          // The state as it stands now, not as the last event left it.
          const fresh = await api('GET', `/api/processes/${id}`);
          if (visit.alive() && REPAIRABLE.includes(fresh.status)) patchEditor.show(fresh);
        }),
      );
    }
    patchEditor.sync(p);
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

  /** The children a parent started (live: each one's room is subscribed to), by step. */
  const childIds = new Set();
  function showChildren(p) {
    const children = p.children ?? [];
    for (const c of children) {
      if (childIds.has(c.id)) continue;
      childIds.add(c.id);
      visit.subscribe({ processId: c.id }, reload);
    }
    if (children.length === 0) return childrenBox.replaceChildren();
    const done = children.filter((c) => c.status === 'completed').length;
    childrenBox.replaceChildren(
      el('h2', { text: `Child processes (${done} of ${children.length} completed)` }),
      el('table', { id: 'children' }, [
        el('thead', {}, [
          el(
            'tr',
            {},
            ['Process', 'Workflow', 'Status', 'Started by step'].map((h) => el('th', { text: h })),
          ),
        ]),
        el(
          'tbody',
          {},
          children.map((c) =>
            el('tr', { class: 'child', 'data-id': c.id }, [
              el('td', {}, [
                el('a', {
                  class: 'child-link mono',
                  href: `#/process/${encodeURIComponent(c.id)}`,
                  text: c.id,
                }),
              ]),
              el('td', { text: c.workflow }),
              el('td', {}, [statusPill(c.status)]),
              el('td', { text: workflowSteps[c.parentStep]?.name ?? `#${c.parentStep}` }),
            ]),
          ),
        ),
      ]),
    );
  }

  function showForm(p) {
    const key = p.form
      ? `${p.status}:${p.stepIndex}`
      : p.formError
        ? `error:${p.formError.message}`
        : '';
    if (key === shownForm) return;
    shownForm = key;
    // The form could not be built now (a slow or failing lookup): say why; a reload tries again.
    if (!p.form && p.formError)
      return formBox.replaceChildren(
        el('h2', { text: `Input: ${p.lastStep ?? ''}` }),
        el('p', {
          id: 'form-error',
          class: 'error',
          text: `The form cannot be shown now (${p.formError.code}): ${p.formError.message}`,
        }),
      );
    if (!p.form) return formBox.replaceChildren();
    const form = pagedForm({
      id: 'resume-form',
      schema: p.form,
      pages: p.formPages,
      submitText: 'Submit and resume',
      // 204: the process moves on; its events bring the page along.
      send: (body) => api('PUT', `/api/processes/${id}/resume`, body),
    });
    formBox.replaceChildren(
      el('h2', { text: `Input: ${p.lastStep ?? ''}` }),
      p.assignee
        ? el('p', {
            class: 'muted',
            text: `Assigned to ${p.assignee}: only a user with that role may submit it.`,
          })
        : '',
      form,
    );
  }

  /** The process as last shown. */
  let shown;
  const load = async () => {
    const p = await api('GET', `/api/processes/${id}`);
    if (!visit.alive()) return;
    if (!shown) {
      try {
        const w = await api('GET', `/api/workflows/${encodeURIComponent(p.workflowName)}`);
        workflowSteps = w.steps ?? [];
      } catch {
        workflowSteps = []; // a workflow no longer loaded: its steps still show, ungrouped
      }
      if (p.parentId) {
        try {
          parentName = (await api('GET', `/api/processes/${p.parentId}`)).workflowName;
        } catch {
          parentName = null; // deleted (a task) or refused: the link names its id
        }
      }
      if (!visit.alive()) return;
    }
    shown = p;
    showHeader(p);
    note.show(p);
    showLocks(p);
    showCallback(p);
    showForm(p);
    showChildren(p);
    steps = p.steps;
    showSteps();
    state.textContent = JSON.stringify(p.currentState, null, 2);
  };
  const reload = debounce(() => {
    load().catch(visit.showError);
  }, 100);

  // Countdowns to the retry (or wake-up) and to the callback's expiry.
  visit.every(1000, () => {
    for (const node of view.querySelectorAll('#retry-at, #callback-expires')) {
      const at = node.dataset.at;
      node.textContent =
        node.id === 'retry-at'
          ? retryText(at, node.dataset.word)
          : `${time(at)} (${untilText(at)})`;
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
      if (e.id !== id && childIds.has(e.id) && shown?.children) {
        // A child's status at once (and the parent's count of those it waits for).
        shown = {
          ...shown,
          children: shown.children.map((c) => (c.id === e.id ? { ...c, status: e.status } : c)),
        };
        showChildren(shown);
        showHeader(shown);
        reload();
        return;
      }
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
