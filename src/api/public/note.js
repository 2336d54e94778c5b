// A process's note on its page: shown with Edit and Clear, or edited in place and saved with
// PATCH /api/processes/<id> {note}. Another page's change comes with the process's refetch after
// its `process:updated`; an edit in progress is not replaced by it.
import { el } from './forms.js';
import { api, errorLine } from './page.js';

/** The note box of process `id` within `visit`; `show(p)` renders the process's note. */
export function noteEditor(id, visit) {
  const node = el('div', { id: 'note-box' });
  const error = el('div', { id: 'note-error', class: 'error', role: 'alert' });
  /** The note as last shown (kept to show again on Cancel). */
  let current = null;
  let editing = false;

  async function save(note) {
    error.textContent = '';
    try {
      const p = await api('PATCH', `/api/processes/${id}`, { note });
      if (!visit.alive()) return;
      editing = false;
      show(p);
    } catch (err) {
      if (visit.alive()) error.textContent = errorLine(err);
    }
  }

  function show(p) {
    current = p.note ?? null;
    if (editing) return;
    const text =
      current === null
        ? el('p', { id: 'note-text', class: 'muted', 'data-empty': true, text: 'No note.' })
        : el('p', { id: 'note-text', class: 'note', text: current });
    const edit = el('button', {
      type: 'button',
      id: 'note-edit',
      text: current === null ? 'Add note' : 'Edit note',
    });
    edit.addEventListener('click', () => startEditing());
    const buttons = [edit];
    if (current !== null) {
      const clear = el('button', { type: 'button', id: 'note-clear', text: 'Clear note' });
      clear.addEventListener('click', async () => {
        clear.disabled = true;
        await save(null);
        clear.disabled = false;
      });
      buttons.push(clear);
    }
    node.replaceChildren(
      el('h2', { text: 'Note' }),
      text,
      el('div', { class: 'actions' }, buttons),
      error,
    );
  }

  function startEditing() {
    editing = true;
    error.textContent = '';
    const input = el('textarea', { id: 'note-input', name: 'note', rows: 3, maxlength: 10_000 });
    input.value = current ?? '';
    const submit = el('button', { type: 'submit', class: 'primary', text: 'Save note' });
    const cancel = el('button', { type: 'button', id: 'note-cancel', text: 'Cancel' });
    const form = el('form', { id: 'note-form', class: 'note-form' }, [
      input,
      el('div', { class: 'actions' }, [submit, cancel]),
    ]);
    cancel.addEventListener('click', () => {
      editing = false;
      show({ note: current });
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      // An empty note is no note.
      await save(input.value.trim() === '' ? null : input.value);
      submit.disabled = false;
    });
    node.replaceChildren(el('h2', { text: 'Note' }), form, error);
    input.focus();
  }

  return { node, show };
}
