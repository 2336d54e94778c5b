// #/process/<id> : one process, its steps appearing as they commit (a step group's steps under
// the group's name; skipped and state-patched steps say by whom), its state, the retry or wake
// time of a waiting process (or the children it waits for), the callback of one awaiting it (URL,
// expiry, progress), the form of a suspended process (page by page), abort/retry, skip step and
// retry with changed state (failed steps), delete (tasks), the note (shown, edited, cleared; live
// from other pages), the locks held or awaited, its child processes (live) or its parent.
import { el } from './forms.js';
import {
  announce,
  api,
  debounce,
  errorLine,
  RESUMABLE,
  TERMINAL,
  time,
  untilText,
  view,
} from './page.js';
import { confirmAction } from './dialog.js';
import { noteEditor } from './note.js';
import { pagedForm } from './paged-form.js';
import { currentStateBox, tracebackBox } from './process-state.js';
import { childrenTable, showCallback, showLocks } from './process-parts.js';
import { REPAIRABLE, stateEditor } from './repair.js';
import { stepDetails, stepsView } from './steps.js';

/** Statuses the retry button applies to (resume without input). */
// Retried from the page: every resumable status but suspended (its form resumes it) and resumed
// (on its way already); finished: the terminal ones. Both from the engine's sets (/statuses.js).
const RETRYABLE = RESUMABLE.filter((s) => s !== 'suspended' && s !== 'resumed');
const FINISHED = TERMINAL;

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
  const currentState = currentStateBox(id, visit);
  const stepsBox = stepsView(id, visit);
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
    stepsBox.node,
    currentState.node,
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

  let steps = [];
  const showSteps = () =>
    stepsBox.show(shown ?? {}, steps, workflowSteps, groupOf, (st, prev) =>
      stepDetails(st, prev, workflowSteps),
    );

  const button = (text, cls, fn, question) => {
    const b = el('button', { type: 'button', class: cls, text });
    b.addEventListener('click', async () => {
      // Asked first, the button still enabled: focus goes back to it when the dialog closes.
      if (question && !(await confirmAction({ ...question, danger: cls === 'danger' }))) return;
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

  let announced;
  function showHeader(p) {
    if (announced && announced !== p.status) announce(`${p.workflowName}: ${p.status}`);
    announced = p.status;
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
      tracebackBox(p),
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
    const name = `${p.workflowName} ${id}`;
    /** A button whose action runs once the user confirmed what it will do. */
    const asked = (text, cls, question, fn) => button(text, cls, fn, question);
    // A parent waiting for its children goes on by itself once they end (a resume is refused).
    if (RETRYABLE.includes(p.status) && !forChildren) {
      const text = p.status !== 'waiting' ? 'Retry' : sleeping ? 'Wake now' : 'Retry now';
      const lines = [`${name} runs again from step "${p.lastStep ?? `#${p.stepIndex}`}".`];
      if (p.status === 'awaiting_callback')
        lines.push(
          'It waits for a callback: the callback URL handed out before stops working, and the step hands out a new one.',
        );
      buttons.push(
        asked(text, 'primary', { title: `${text}?`, lines, confirmText: text }, () =>
          api('PUT', `/api/processes/${id}/resume`, {}),
        ),
      );
    }
    if (REPAIRABLE.includes(p.status)) {
      const step = p.lastStep ?? `#${p.stepIndex}`;
      buttons.push(
        asked(
          'Skip step',
          '',
          {
            title: 'Skip step?',
            lines: [
              `Skip step "${step}" of ${name}? It is recorded as skipped and the process goes on with the next step.`,
            ],
            confirmText: 'Skip step',
          },
          () => api('PUT', `/api/processes/${id}/skip`),
        ),
        button('Retry with changed state', '', async () => {
          // The state as it stands now, not as the last event left it.
          const fresh = await api('GET', `/api/processes/${id}`);
          if (visit.alive() && REPAIRABLE.includes(fresh.status)) patchEditor.show(fresh);
        }),
      );
    }
    patchEditor.sync(p);
    if (!FINISHED.includes(p.status)) {
      const kids = (p.children ?? []).filter(going).length;
      buttons.push(
        asked(
          'Abort',
          'danger',
          {
            title: 'Abort?',
            lines: [
              `${name} stops for good (status aborted); it cannot be retried.`,
              ...(kids ? [`Its ${kids} running child processes are aborted with it.`] : []),
            ],
            confirmText: 'Abort',
          },
          () => api('PUT', `/api/processes/${id}/abort`),
        ),
      );
    }
    // Only tasks are deleted, and not while they run (the API answers 400 / 409 otherwise).
    if (p.isTask && p.status !== 'running') {
      buttons.push(
        asked(
          'Delete',
          'danger',
          {
            title: 'Delete task?',
            lines: [`Delete task ${name} with its steps? This cannot be undone.`],
            confirmText: 'Delete',
          },
          async () => {
            await api('DELETE', `/api/processes/${id}`);
            if (visit.alive()) location.hash = '#/';
          },
        ),
      );
    }
    actions.replaceChildren(...buttons);
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
    childrenBox.replaceChildren(...childrenTable(children, workflowSteps));
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
    const p = await api('GET', `/api/processes/${id}?states=false`);
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
    showLocks(locksBox, p);
    showCallback(callbackBox, p);
    showForm(p);
    showChildren(p);
    steps = p.steps;
    showSteps();
    currentState.show(p.steps);
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
