// #/start/<name> : start a workflow from a form rendered from its input JSON Schema.
import { el, readFields, renderFields } from './forms.js';
import { api, view } from './page.js';

export async function startPage(name, visit) {
  const workflows = await api('GET', '/api/workflows');
  if (!visit.alive()) return;
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
