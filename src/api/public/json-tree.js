// A JSON value as a tree: objects and arrays fold (<details>), their children built only when
// unfolded, so a state of megabytes shows at once and costs only what is opened. "Copy JSON" puts
// the whole value on the clipboard. Never put in a table cell: callers give it a box of its own.
import { el } from './forms.js';

/** Children built per unfold, at most this many at once (a "show more" button adds the rest). */
const BATCH = 200;

const preview = (v) => (Array.isArray(v) ? `[${v.length}]` : `{${Object.keys(v).length}}`);

function scalar(v) {
  const type = v === null ? 'null' : typeof v;
  return el('span', { class: `json-${type}`, text: JSON.stringify(v) });
}

function node(key, value, open) {
  const label =
    key === undefined ? [] : [el('span', { class: 'json-key', text: JSON.stringify(key) }), ': '];
  if (value === null || typeof value !== 'object') {
    return el('div', { class: 'json-leaf' }, [...label, scalar(value)]);
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  const body = el('div', { class: 'json-children' });
  const details = el('details', { class: 'json-node' }, [
    el('summary', {}, [...label, el('span', { class: 'muted', text: preview(value) })]),
    body,
  ]);
  let shown = 0;
  const more = () => {
    const next = entries.slice(shown, shown + BATCH);
    shown += next.length;
    body.querySelector(':scope > .json-more')?.remove();
    body.append(...next.map(([k, v]) => node(k, v, false)));
    if (shown < entries.length) {
      const b = el('button', {
        type: 'button',
        class: 'json-more',
        text: `show ${Math.min(BATCH, entries.length - shown)} more of ${entries.length - shown}`,
      });
      b.addEventListener('click', more);
      body.append(b);
    }
  };
  details.addEventListener('toggle', () => {
    if (details.open && shown === 0) more();
  });
  if (open) details.open = true;
  return details;
}

/**
 * The tree of `value` (its first level unfolded), with "Expand all" (the first levels only: a
 * huge state stays usable), "Collapse all" and "Copy JSON".
 */
export function jsonTree(value, { id } = {}) {
  const root = el('div', { class: 'json-tree', id });
  const tree = node(undefined, value, true);
  const copied = el('span', { class: 'muted', role: 'status' });
  const button = (text, fn) => {
    const b = el('button', { type: 'button', class: 'small', text });
    b.addEventListener('click', fn);
    return b;
  };
  const tools = el('div', { class: 'json-tools' }, [
    button('Expand all', () => {
      // Two levels below what is open: enough to read, bounded for a state of megabytes.
      for (let depth = 0; depth < 2; depth++)
        for (const d of root.querySelectorAll('details.json-node:not([open])')) d.open = true;
    }),
    button('Collapse all', () => {
      for (const d of root.querySelectorAll('details.json-node[open]')) d.open = false;
      tree.open = true;
    }),
    button('Copy JSON', async () => {
      const text = JSON.stringify(value, null, 2);
      try {
        await window.navigator.clipboard.writeText(text);
        copied.textContent = 'Copied';
      } catch {
        copied.textContent = 'Copy refused by the browser';
      }
    }),
    copied,
  ]);
  root.append(tools, tree);
  return root;
}
