// #/start/<name> : start a workflow from a form rendered from its input JSON Schema, page by page
// when the workflow's form has several.
import { el } from './forms.js';
import { api, view } from './page.js';
import { pagedForm } from './paged-form.js';

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
  const form = chosen
    ? pagedForm({
        id: 'start-form',
        errorId: 'start-error',
        schema: chosen.inputSchema,
        pages: chosen.inputPages,
        submitText: 'Start',
        send: (body) => api('POST', `/api/processes/${chosen.name}`, body),
        onDone: visit.guard(({ id }) => (location.hash = `#/process/${id}`)),
      })
    : el('p', { class: 'muted', text: 'No workflows.' });
  view.replaceChildren(
    el('h1', { text: 'Start a workflow' }),
    el('label', {}, ['Workflow ', select]),
    el('p', { class: 'muted', text: chosen?.description ?? '' }),
    chosen ? stepsOutline(chosen.steps ?? []) : '',
    form,
  );
}

/** The workflow's steps in one line, a group's steps inside its name: "A → G (B, C) → D". */
function stepsOutline(steps) {
  const parts = [];
  for (const s of steps) {
    const last = parts.at(-1);
    if (s.group && last?.group === s.group) last.names.push(s.name);
    else parts.push({ group: s.group, names: [s.name] });
  }
  const text = parts
    .map((p) => (p.group ? `${p.group} (${p.names.join(', ')})` : p.names[0]))
    .join(' → ');
  return el('p', { class: 'muted', id: 'start-steps', text: text ? `Steps: ${text}` : '' });
}
