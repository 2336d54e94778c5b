// Forms rendered from JSON Schema (what zod's toJSONSchema gives for workflow inputs and input
// steps): strings, numbers, integers, booleans and enums get their own inputs; anything else is
// edited as JSON. Values are read back into an object that the API validates.

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
  if (Array.isArray(schema.enum)) return 'enum';
  if (schema.const !== undefined) return 'const';
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  if (type === 'string' || type === 'number' || type === 'integer' || type === 'boolean') {
    return type;
  }
  return 'json';
}

function field(name, schema, required) {
  const kind = kindOf(schema);
  const id = `field-${name}`;
  const title = schema.title ?? name;
  const label = el('label', { for: id, text: required ? `${title} *` : title });
  const hint = schema.description ? el('div', { class: 'muted', text: schema.description }) : null;
  let input;
  switch (kind) {
    case 'boolean':
      input = el('input', { type: 'checkbox', id, name, checked: schema.default === true });
      return el('div', { class: 'check', 'data-kind': kind }, [input, ' ', label, hint]);
    case 'enum':
      input = el(
        'select',
        { id, name },
        schema.enum.map((v) =>
          el('option', {
            value: JSON.stringify(v),
            text: String(v),
            selected: v === schema.default,
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
        value: schema.default,
        required,
      });
      break;
    case 'string':
      input = el('input', {
        type: 'text',
        id,
        name,
        value: schema.default,
        required,
        minlength: schema.minLength,
        maxlength: schema.maxLength,
      });
      break;
    case 'const':
      input = el('input', { type: 'text', id, name, value: String(schema.const), readonly: true });
      break;
    default:
      input = el('textarea', { id, name, rows: 3, placeholder: 'JSON' });
      if (schema.default !== undefined) input.value = JSON.stringify(schema.default, null, 2);
  }
  return el('div', { 'data-kind': kind }, [label, hint, input]);
}

/** Builds the fields of an object schema into `form` (before its buttons). */
export function renderFields(form, schema) {
  const props = schema?.properties ?? {};
  const required = new Set(schema?.required ?? []);
  const box = el('div', { class: 'fields' });
  for (const [name, prop] of Object.entries(props))
    box.append(field(name, prop, required.has(name)));
  if (Object.keys(props).length === 0) box.append(el('p', { class: 'muted', text: 'No input.' }));
  form.prepend(box);
}

/** Reads the form back into an object; throws an Error naming a field whose JSON is invalid. */
export function readFields(form, schema) {
  const out = {};
  for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
    const input = form.elements.namedItem(name);
    if (!input) continue;
    const kind = kindOf(prop);
    if (kind === 'boolean') out[name] = input.checked;
    else if (kind === 'enum') out[name] = JSON.parse(input.value);
    else if (kind === 'const') out[name] = prop.const;
    else if (input.value === '') continue;
    else if (kind === 'number' || kind === 'integer') out[name] = Number(input.value);
    else if (kind === 'string') out[name] = input.value;
    else {
      try {
        out[name] = JSON.parse(input.value);
      } catch {
        throw new Error(`${name}: not valid JSON`);
      }
    }
  }
  return out;
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
