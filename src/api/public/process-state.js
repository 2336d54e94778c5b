// A process's current state and its traceback, each in a box of its own that folds.
// The current state is read (GET …/state) when the box is open, and again only when a new step
// row brings a new state: a live event that changes nothing else reads nothing. A small state
// (under SMALL bytes stored) is shown open; a large one waits to be opened.
import { el } from './forms.js';
import { jsonTree } from './json-tree.js';
import { api, errorLine } from './page.js';

const SMALL = 20_000;

export function currentStateBox(id, visit) {
  const content = el('div', { id: 'current-state' });
  const size = el('span', { class: 'muted' });
  const details = el('details', { id: 'current-state-box' }, [
    el('summary', {}, [el('h2', { text: 'Current state' }), ' ', size]),
    content,
  ]);
  let lastStep;
  let readFor;
  let decided = false;
  async function read() {
    if (!details.open || readFor === lastStep) return;
    const step = lastStep;
    readFor = step;
    try {
      const t0 = window.performance.now();
      const r = await api('GET', `/api/processes/${id}/state`);
      if (!visit.alive() || readFor !== step) return;
      content.replaceChildren(jsonTree(r.state, { id: 'current-state-tree' }));
      details.dataset.renderMs = String(Math.round(window.performance.now() - t0));
    } catch (err) {
      readFor = undefined;
      if (visit.alive()) content.replaceChildren(el('p', { class: 'error', text: errorLine(err) }));
    }
  }
  details.addEventListener('toggle', () => void read());
  return {
    node: details,
    /** The process's steps as listed (without states): reads the state again if it changed. */
    show(steps) {
      const last = steps.at(-1);
      lastStep = last?.id ?? 'initial';
      const bytes = last?.stateSize ?? 0;
      size.textContent = bytes
        ? `(${(bytes / 1024).toFixed(bytes < 10_240 ? 1 : 0)} KB stored)`
        : '';
      if (!decided) {
        decided = true;
        details.open = bytes < SMALL;
      }
      void read();
    },
  };
}

/** The traceback of a failed process: folded, unfolds to the whole text, copies it. */
export function tracebackBox(p) {
  if (!p.traceback) return '';
  const copied = el('span', { class: 'muted', role: 'status' });
  const copy = el('button', {
    type: 'button',
    id: 'copy-traceback',
    class: 'small',
    text: 'Copy traceback',
  });
  copy.addEventListener('click', async () => {
    try {
      await window.navigator.clipboard.writeText(p.traceback);
      copied.textContent = 'Copied';
    } catch {
      copied.textContent = 'Copy refused by the browser';
    }
  });
  const firstLine = p.traceback.split('\n')[0];
  return el('details', { id: 'traceback', class: 'traceback' }, [
    el('summary', {}, ['Traceback: ', el('span', { class: 'mono', text: firstLine })]),
    el('pre', { class: 'mono', id: 'traceback-text', text: p.traceback }),
    copy,
    copied,
  ]);
}
