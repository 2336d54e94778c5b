// Repairing a failed step from the process page: "Retry with changed state" opens an editor of
// the state (prefilled with the current state's JSON, or an empty object for only the keys to
// change) whose keys are shallow-merged into the state before the retry:
// PUT /api/processes/<id>/resume {state: patch}. Its errors show in place; the process's events
// bring the page along once it is accepted. (Skip step is a button of the page itself.)
import { el } from './forms.js';
import { api, errorLine, REPAIRABLE } from './page.js';

/** Statuses whose failed step can be skipped or retried on a patched state. */
export { REPAIRABLE };

const json = (v) => JSON.stringify(v);

/**
 * The patch that `edited` asks for: from the current state (`base`), the keys it adds or whose
 * value it changes; from an empty object (`base` null), all its keys. Throws an Error to show.
 */
export function patchOf(text, base) {
  let edited;
  try {
    edited = JSON.parse(text);
  } catch (err) {
    throw new Error(`Not valid JSON: ${err.message}`);
  }
  if (edited === null || typeof edited !== 'object' || Array.isArray(edited)) {
    throw new Error('The state must be a JSON object: {"key": value, …}');
  }
  if (base === null) {
    if (Object.keys(edited).length === 0) throw new Error('Give at least one key to change.');
    return edited;
  }
  const removed = Object.keys(base).filter((k) => !(k in edited));
  if (removed.length > 0) {
    throw new Error(
      `The keys given are merged into the state, none is removed: put back ${removed.join(', ')} (or set it to null).`,
    );
  }
  const patch = Object.fromEntries(
    Object.entries(edited).filter(([k, v]) => !(k in base) || json(v) !== json(base[k])),
  );
  if (Object.keys(patch).length === 0) throw new Error('Nothing changed: edit a value first.');
  return patch;
}

/** The state editor of process `id` within `visit`. */
export function stateEditor(id, visit) {
  const node = el('div', { id: 'patch-box' });
  let open = false;

  function close() {
    open = false;
    node.replaceChildren();
  }

  /** Opens the editor on process `p` (failed or inconsistent_data). */
  function show(p) {
    open = true;
    const current = p.currentState ?? {};
    /** What the text started from: the current state, or null for an empty object. */
    let base = current;
    const input = el('textarea', {
      id: 'patch-input',
      class: 'mono',
      name: 'state',
      rows: 12,
      spellcheck: 'false',
      'aria-describedby': 'patch-hint',
    });
    const fill = (from) => {
      base = from;
      input.value = JSON.stringify(from ?? {}, null, 2);
      error.textContent = '';
    };
    const fromState = el('button', {
      type: 'button',
      id: 'patch-from-state',
      text: 'Start from the current state',
    });
    const fromEmpty = el('button', {
      type: 'button',
      id: 'patch-from-empty',
      text: 'Start from {} (only the keys to change)',
    });
    fromState.addEventListener('click', () => fill(current));
    fromEmpty.addEventListener('click', () => fill(null));
    const error = el('div', { id: 'patch-error', class: 'error', role: 'alert' });
    const submit = el('button', {
      type: 'submit',
      class: 'primary',
      text: 'Retry with this state',
    });
    const cancel = el('button', { type: 'button', id: 'patch-cancel', text: 'Cancel' });
    cancel.addEventListener('click', close);
    const form = el('form', { id: 'patch-form', class: 'patch-form' }, [
      el('p', {
        id: 'patch-hint',
        class: 'muted',
        text:
          `The keys given are set in the state (a shallow merge, nothing removed) before step ` +
          `${p.lastStep ?? ''} is retried; the step history records who changed which keys.`,
      }),
      el('div', { class: 'actions' }, [fromState, fromEmpty]),
      input,
      error,
      el('div', { class: 'actions' }, [submit, cancel]),
    ]);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      let patch;
      try {
        patch = patchOf(input.value, base);
      } catch (err) {
        error.textContent = err.message;
        return;
      }
      submit.disabled = true;
      try {
        await api('PUT', `/api/processes/${id}/resume`, { state: patch });
        // 204: the process is resumed; its events bring the page along.
        if (visit.alive()) close();
      } catch (err) {
        if (visit.alive()) error.textContent = errorLine(err);
      } finally {
        submit.disabled = false;
      }
    });
    fill(current);
    node.replaceChildren(el('h2', { text: 'Retry with changed state' }), form);
    input.focus();
  }

  /** Follows the process: the editor goes once it is no longer repairable. */
  function sync(p) {
    if (open && !REPAIRABLE.includes(p.status)) close();
  }

  return { node, show, sync, isOpen: () => open };
}
