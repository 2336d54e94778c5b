// Forms rendered from JSON Schema (what zod's toJSONSchema gives for workflow inputs and input
// steps): strings, numbers, integers, booleans and enums get their own inputs, values already
// chosen (`const`, readOnly) are shown as text; anything else is edited as JSON. Values are read
// back into an object that the API validates; its validation errors are shown at their fields.

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c) node.append(c);
  return node;
}
export { el };

/** The kind of input a property schema gets. */
function kindOf(schema) {
  // A value already chosen (a form built from the state): shown, not asked for.
  if (schema.const !== undefined) return 'readonly';
  if (schema.readOnly === true && schema.default !== undefined) return 'readonly';
  if (Array.isArray(schema.enum)) return 'enum';
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  if (type === 'string' || type === 'number' || type === 'integer' || type === 'boolean') {
    return type;
  }
  return 'json';
}

const readonlyValue = (schema) => (schema.const !== undefined ? schema.const : schema.default);

/** One field; `value` (a page given before) wins over the schema's default. */
function field(name, schema, required, value, prefix) {
  const kind = kindOf(schema);
  const id = `${prefix}-${name}`;
  const title = schema.title ?? name;
  const initial = value !== undefined ? value : schema.default;
  const label = el('label', {
    for: kind === 'readonly' ? undefined : id,
    text: required && kind !== 'readonly' ? `${title} *` : title,
  });
  const hint = schema.description ? el('div', { class: 'muted', text: schema.description }) : null;
  const error = el('div', { class: 'field-error', 'data-error-for': name, hidden: true });
  let input;
  switch (kind) {
    case 'readonly': {
      const v = readonlyValue(schema);
      const text = typeof v === 'string' ? v : JSON.stringify(v);
      input = el('div', { class: 'readonly-value mono', 'data-value-for': name, text });
      break;
    }
    case 'boolean':
      input = el('input', { type: 'checkbox', id, name, checked: initial === true });
      return el('div', { class: 'check', 'data-kind': kind, 'data-field': name }, [
        input,
        ' ',
        label,
        hint,
        error,
      ]);
    case 'enum':
      input = el(
        'select',
        { id, name },
        schema.enum.map((v) =>
          el('option', {
            value: JSON.stringify(v),
            text: String(v),
            selected: JSON.stringify(v) === JSON.stringify(initial),
          }),
        ),
      );
      break;
    case 'number':
    case 'integer':
      input = el('input', {
        type: 'number',
        id,
        name,
        step: kind === 'integer' ? 1 : 'any',
        min: schema.minimum,
        max: schema.maximum,
        value: initial,
        required,
      });
      break;
    case 'string':
      input = el('input', {
        type: 'text',
        id,
        name,
        value: initial,
        required,
        minlength: schema.minLength,
        maxlength: schema.maxLength,
      });
      break;
    default:
      input = el('textarea', { id, name, rows: 3, placeholder: 'JSON' });
      if (initial !== undefined) input.value = JSON.stringify(initial, null, 2);
  }
  return el('div', { 'data-kind': kind, 'data-field': name }, [label, hint, input, error]);
}

/**
 * The fields of an object schema, filled from `values` (the page as given before) or the
 * defaults. `prefix` keeps element ids apart between forms.
 */
export function renderFields(schema, values = {}, prefix = 'field') {
  const props = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);
  const box = el('div', { class: 'fields' });
  for (const [name, prop] of Object.entries(props)) {
    box.append(field(name, prop, required.has(name), values?.[name], prefix));
  }
  if (Object.keys(props).length === 0) box.append(el('p', { class: 'muted', text: 'No input.' }));
  return box;
}

/** Reads the form back into an object; throws an Error naming a field whose JSON is invalid. */
export function readFields(form, schema) {
  const out = {};
  for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
    const kind = kindOf(prop);
    if (kind === 'readonly') {
      out[name] = readonlyValue(prop);
      continue;
    }
    const input = form.elements.namedItem(name);
    if (!input) continue;
    if (kind === 'boolean') out[name] = input.checked;
    else if (kind === 'enum') out[name] = JSON.parse(input.value);
    else if (input.value === '') continue;
    else if (kind === 'number' || kind === 'integer') out[name] = Number(input.value);
    else if (kind === 'string') out[name] = input.value;
    else {
      try {
        out[name] = JSON.parse(input.value);
      } catch {
        throw Object.assign(new Error(`${name}: not valid JSON`), {
          details: [{ path: [name], message: 'not valid JSON' }],
        });
      }
    }
  }
  return out;
}

/** Removes the errors shown at fields. */
export function clearFieldErrors(form) {
  for (const e of form.querySelectorAll('.field-error')) {
    e.hidden = true;
    e.textContent = '';
  }
  for (const f of form.querySelectorAll('[data-field].invalid')) f.classList.remove('invalid');
  for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
}

/**
 * Shows validation issues (`{path, message}`) next to the field their path starts with; returns
 * the issues that name no field on the form (shown elsewhere by the caller).
 */
export function showFieldErrors(form, issues) {
  const unplaced = [];
  for (const issue of issues) {
    const [name, ...rest] = issue.path ?? [];
    const slot =
      name === undefined
        ? null
        : Array.from(form.querySelectorAll('.field-error')).find(
            (e) => e.dataset.errorFor === String(name),
          );
    if (!slot) {
      unplaced.push(issue);
      continue;
    }
    const line = rest.length ? `${rest.join('.')}: ${issue.message}` : issue.message;
    slot.textContent = slot.textContent ? `${slot.textContent}\n${line}` : line;
    slot.hidden = false;
    slot.closest('[data-field]')?.classList.add('invalid');
    form.elements.namedItem(String(name))?.setAttribute?.('aria-invalid', 'true');
  }
  return unplaced;
}

/** Human-readable text of an API error body (with zod issues when present). */
export function errorText(body, status) {
  const e = body?.error;
  if (!e) return `Request failed (${status})`;
  const issues = Array.isArray(e.details)
    ? e.details.map((d) => `• ${(d.path ?? []).join('.') || '(input)'}: ${d.message}`)
    : [];
  return [e.message, ...issues].join('\n');
}
