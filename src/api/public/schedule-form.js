// The form that adds a schedule, or replaces the one of the same name: POST /api/schedules
// {name, workflow, cron, timezone, input, overlap}. The input is the start form's first page
// (the whole form for a workflow of one page) or JSON text (an array of pages for a form of
// several). Errors show in place: the code and message in the banner, issues at their field.
import { clearFieldErrors, el, readFields, renderFields, showFieldErrors } from './forms.js';
import { api } from './page.js';

/** The message of a body that does not parse as a schedule (src/api/schedules.ts). */
const INVALID_BODY = 'Invalid schedule';

const issueLine = (d) => `• ${(d.path ?? []).join('.') || '(input)'}: ${d.message}`;
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Whether this browser knows the IANA time zone `tz` (an invalid cron is the other cause). */
function knownTimeZone(tz) {
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** A labelled input with its error slot, shaped like the fields of forms.js. */
function fieldBox(name, label, input, hint) {
  return el('div', { 'data-field': name }, [
    el('label', { for: input.id, text: label }),
    hint ? el('div', { class: 'muted', text: hint }) : null,
    input,
    el('div', { class: 'field-error', 'data-error-for': name, hidden: true }),
  ]);
}

/**
 * - `workflows`: GET /api/workflows.
 * - `exists(name)`: whether a schedule of that name is listed (the answer says "Replaced").
 * - `onSaved(schedule)`: after the API answered 201 or 200 with the schedule.
 * Returns `{ node, fill(schedule) }`; `fill` loads a schedule into the form to change it.
 */
export function scheduleForm({ workflows, exists, onSaved }) {
  const nameInput = el('input', {
    type: 'text',
    id: 'schedule-name',
    name: 'name',
    required: true,
    maxlength: 100,
    placeholder: 'nightly-clean-up',
  });
  const workflowSelect = el(
    'select',
    { id: 'schedule-workflow', name: 'workflow' },
    workflows.map((w) =>
      el('option', { value: w.name, text: w.isTask ? `${w.name} (task)` : w.name }),
    ),
  );
  const cronInput = el('input', {
    type: 'text',
    id: 'schedule-cron',
    name: 'cron',
    required: true,
    placeholder: '0 3 * * *',
  });
  const zones =
    typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  const tzInput = el('input', {
    type: 'text',
    id: 'schedule-timezone',
    name: 'timezone',
    value: 'UTC',
    list: 'schedule-timezones',
  });
  const tzList = el(
    'datalist',
    { id: 'schedule-timezones' },
    ['UTC', ...zones].map((z) => el('option', { value: z })),
  );
  const overlapInput = el('input', {
    type: 'checkbox',
    id: 'schedule-overlap',
    name: 'overlap',
    checked: true,
  });
  const formOption = el('option', { value: 'form', text: "the start form's first page" });
  const modeSelect = el('select', { id: 'schedule-input-mode' }, [
    formOption,
    el('option', { value: 'json', text: 'JSON' }),
  ]);
  let mode = 'form';

  const top = el('fieldset', { class: 'schedule-fields' }, [
    fieldBox('name', 'Name *', nameInput, 'Lower-case letters, digits, _ and -'),
    fieldBox('workflow', 'Workflow *', workflowSelect),
    fieldBox('cron', 'Cron *', cronInput, 'Five fields, or six with seconds first'),
    fieldBox('timezone', 'Time zone', tzInput),
    tzList,
    el('div', { class: 'check', 'data-field': 'overlap' }, [
      overlapInput,
      ' ',
      el('label', { for: overlapInput.id, text: 'Overlap' }),
      el('div', {
        class: 'muted',
        text: 'Start a run while the previous one still goes on (off: that tick is skipped)',
      }),
      el('div', { class: 'field-error', 'data-error-for': 'overlap', hidden: true }),
    ]),
    el('label', { for: modeSelect.id, text: 'Input as' }),
    modeSelect,
  ]);
  const inputBox = el('fieldset', { class: 'schedule-input' });
  const submit = el('button', { type: 'submit', class: 'primary', text: 'Save schedule' });
  const banner = el('div', { class: 'error', id: 'schedule-error', role: 'alert' });
  const saved = el('div', { class: 'saved', id: 'schedule-saved', role: 'status' });
  const form = el('form', { class: 'schema-form', id: 'schedule-form' }, [
    top,
    inputBox,
    el('div', { class: 'actions' }, [submit]),
    banner,
    saved,
  ]);

  const chosen = () => workflows.find((w) => w.name === workflowSelect.value);

  /** Shows the input as the mode asks, filled from `value` (undefined: the defaults). */
  function showInput(value) {
    const w = chosen();
    const pages = w?.inputPages ?? 1;
    // A form of several pages builds each page from the ones before: only JSON gives them all.
    formOption.disabled = pages > 1;
    if (pages > 1) mode = 'json';
    modeSelect.value = mode;
    const legend = el('legend', { text: 'Input' });
    if (mode === 'json') {
      const text = el('textarea', { id: 'schedule-input', name: 'input', rows: 4, class: 'mono' });
      text.value = value === undefined ? (pages > 1 ? '[]' : '{}') : JSON.stringify(value, null, 2);
      const hint =
        pages > 1
          ? `The start form of ${w.name} has ${pages} pages: an array, one object a page`
          : 'One object, as the start form would send';
      inputBox.replaceChildren(legend, fieldBox('input', 'Input (JSON)', text, hint));
    } else {
      const values = Array.isArray(value) ? value[0] : value;
      inputBox.replaceChildren(
        legend,
        renderFields(w?.inputSchema, isObject(values) ? values : {}, 'schedule-input'),
      );
    }
  }

  /** The input as the shown mode has it; throws with issues (paths in the input) when unreadable. */
  function readInput() {
    if (mode === 'form') return readFields(inputBox, chosen()?.inputSchema);
    const text = inputBox.querySelector('textarea[name="input"]').value.trim();
    if (text === '') return {};
    try {
      return JSON.parse(text);
    } catch {
      throw Object.assign(new Error('The input is not valid JSON'), {
        details: [{ path: [], message: 'not valid JSON' }],
      });
    }
  }

  /** Places issues whose paths are in the input; returns those that name no field shown. */
  function inputIssues(issues) {
    if (mode === 'form') return showFieldErrors(inputBox, issues);
    const page = (i) => (typeof i.page === 'number' ? [i.page] : []);
    return showFieldErrors(
      inputBox,
      issues.map((i) => ({ ...i, path: ['input', ...page(i), ...(i.path ?? [])] })),
    );
  }

  /** Places issues of the schedule's own fields (an `input` path goes to the input). */
  function bodyIssues(issues) {
    const unplaced = [];
    for (const i of issues) {
      const [first, ...rest] = i.path ?? [];
      if (first === 'input') unplaced.push(...inputIssues([{ ...i, path: rest }]));
      else unplaced.push(...showFieldErrors(top, [i]));
    }
    return unplaced;
  }

  function showError(err) {
    const message = err.apiMessage ?? err.message;
    const issues = Array.isArray(err.details) ? err.details : [];
    let unplaced = issues;
    if (err.code === 'invalid_schedule') {
      const at = knownTimeZone(tzInput.value.trim() || 'UTC') ? 'cron' : 'timezone';
      unplaced = showFieldErrors(top, [{ path: [at], message }]);
    } else if (err.code === 'workflow_not_found') {
      unplaced = showFieldErrors(top, [{ path: ['workflow'], message }]);
    } else if (err.code === 'validation_error' && message === INVALID_BODY) {
      unplaced = bodyIssues(issues);
    } else if (err.code === 'validation_error') {
      // The input does not validate against the workflow's start form (or lacks pages).
      unplaced = inputIssues(issues.length ? issues : [{ path: [], message }]);
    }
    const head = err.code ? `${err.code}: ${message}` : message;
    banner.textContent = [head, ...unplaced.map(issueLine)].join('\n');
  }

  workflowSelect.addEventListener('change', () => showInput(undefined));
  modeSelect.addEventListener('change', () => {
    // What was typed carries over to the other mode where it can.
    let value;
    try {
      value = readInput();
    } catch {
      value = undefined;
    }
    mode = modeSelect.value;
    showInput(value);
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    banner.textContent = '';
    saved.textContent = '';
    let input;
    try {
      input = readInput();
    } catch (err) {
      banner.textContent = [err.message, ...inputIssues(err.details ?? []).map(issueLine)].join(
        '\n',
      );
      return;
    }
    const body = {
      name: nameInput.value.trim(),
      workflow: workflowSelect.value,
      cron: cronInput.value.trim(),
      overlap: overlapInput.checked,
      input,
    };
    const tz = tzInput.value.trim();
    if (tz) body.timezone = tz; // none: the API's default, UTC
    const replacing = exists(body.name);
    submit.disabled = true;
    try {
      const s = await api('POST', '/api/schedules', body);
      const next = s.nextRunAt ? `, next run ${new Date(s.nextRunAt).toLocaleString()}` : '';
      saved.textContent = `${replacing ? 'Replaced' : 'Added'} schedule ${s.name}${next}`;
      onSaved(s);
    } catch (err) {
      showError(err);
    } finally {
      submit.disabled = false;
    }
  });

  function fill(s) {
    clearFieldErrors(form);
    banner.textContent = '';
    saved.textContent = '';
    nameInput.value = s.name;
    workflowSelect.value = s.workflow;
    cronInput.value = s.cron;
    tzInput.value = s.timezone ?? 'UTC';
    overlapInput.checked = s.overlap !== false;
    mode = isObject(s.input) ? 'form' : 'json';
    showInput(s.input ?? undefined);
    form.scrollIntoView({ block: 'nearest' });
    nameInput.focus();
  }

  showInput(undefined);
  return { node: form, fill };
}
