// #/process/<id> : one process, its steps appearing as they commit, its state, the form of a
// suspended process, and abort/retry.
import { el, readFields, renderFields } from './forms.js';
import { api, debounce, statusPill, time, view } from './page.js';

/** Statuses the retry button applies to (resume without input). */
const RETRYABLE = ['failed', 'waiting', 'api_unavailable', 'inconsistent_data'];
const FINISHED = ['completed', 'aborted'];

export async function processPage(id, visit) {
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
    load().catch(visit.showError);
  }, 100);

  visit.on({
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
  });
  visit.subscribe({ processId: id }, reload);
}
