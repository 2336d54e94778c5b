// A form of one or more pages (a start form or an input step), shown page by page. The API
// builds each page from the pages before it: a body that lacks pages answers 422
// `form_incomplete` with the next page's schema, so the pages given so far are sent as an array
// every time and the form follows the answer. A single-page form sends one object, as before.
import { clearFieldErrors, el, readFields, renderFields, showFieldErrors } from './forms.js';

/**
 * Builds the form element.
 * - `id`: the form's element id (and its fields' id prefix); its banner is `<id>-error`
 *   unless `errorId` names another.
 * - `schema`: the first page's JSON Schema; `pages`: how many pages (default 1).
 * - `submitText`: the label of the last page's button (default "Submit").
 * - `send(body)`: the request; resolves when done, rejects with the API error (page.js `api`).
 * - `onDone(result)`: after `send` resolved.
 */
export function pagedForm({ id, errorId, schema, pages = 1, submitText = 'Submit', send, onDone }) {
  /** The JSON Schema of each page reached, and the input given on each (kept on Back). */
  const schemas = [schema];
  const given = [];
  let total = Math.max(1, pages ?? 1);
  let current = 0;

  const indicator = el('p', { class: 'page-indicator muted' });
  const fields = el('div');
  const back = el('button', { type: 'button', class: 'back', text: 'Back' });
  const submit = el('button', { type: 'submit', class: 'primary' });
  const banner = el('div', { class: 'error', id: errorId ?? `${id}-error` });
  const form = el('form', { class: 'schema-form', id }, [
    indicator,
    fields,
    el('div', { class: 'actions' }, [back, submit]),
    banner,
  ]);

  /** Keeps what the user typed on the page shown before another page replaces it. */
  function remember() {
    try {
      given[current] = readFields(form, schemas[current]);
    } catch {
      // Unreadable JSON stays out of `given`; the page asks again when reached.
    }
  }

  function show(page) {
    current = page;
    form.dataset.page = String(page);
    fields.replaceChildren(renderFields(schemas[page], given[page], id));
    indicator.hidden = total < 2;
    indicator.textContent = `Page ${page + 1} of ${total}`;
    back.hidden = page === 0;
    submit.textContent = page + 1 < total ? 'Next' : submitText;
    banner.textContent = '';
  }

  /** Places validation issues at their fields, on the page they name (the earliest one). */
  function showIssues(err) {
    const issues = Array.isArray(err.details) ? err.details : [];
    const pageOf = (i) => (typeof i.page === 'number' ? i.page : current);
    const pagesNamed = issues.map(pageOf).filter((p) => schemas[p] !== undefined);
    const page = pagesNamed.length ? Math.min(...pagesNamed) : current;
    if (page !== current) show(page);
    const unplaced = showFieldErrors(
      form,
      issues.filter((i) => pageOf(i) === page),
    );
    const elsewhere = issues.filter((i) => pageOf(i) !== page);
    const lines = [...unplaced, ...elsewhere].map(
      (d) => `• ${(d.path ?? []).join('.') || '(input)'}: ${d.message}`,
    );
    banner.textContent = [err.message.split('\n')[0], ...lines].join('\n');
  }

  back.addEventListener('click', () => {
    remember();
    show(current - 1);
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearFieldErrors(form);
    banner.textContent = '';
    try {
      given[current] = readFields(form, schemas[current]);
    } catch (err) {
      showIssues(err);
      return;
    }
    const upTo = given.slice(0, current + 1);
    submit.disabled = true;
    try {
      const result = await send(total > 1 ? upTo : upTo[0]);
      onDone?.(result);
    } catch (err) {
      if (err.code === 'form_incomplete' && err.details?.form) {
        const next = err.details.page ?? current + 1;
        total = Math.max(err.details.pages ?? total, next + 1);
        schemas[next] = err.details.form;
        // A page rebuilt from changed answers before it starts over from what fits it.
        schemas.length = next + 1;
        show(next);
      } else if (err.code === 'validation_error') {
        showIssues(err);
      } else {
        banner.textContent = err.message;
      }
    } finally {
      submit.disabled = false;
    }
  });

  show(0);
  return form;
}
