// A process's steps: the timeline of the workflow (steps done, the running one, those still to
// come greyed out; groups folded but for the one the process stands in), the table of step rows
// as they committed (start, end, duration; the failing step highlighted) and one step's state
// with what it changed, read when its "State" button is pressed (GET …/state?step=), as a tree
// in a box of its own below the table.
import { el } from './forms.js';
import { jsonTree } from './json-tree.js';
import { api, errorLine, fullTime, statusPill } from './page.js';

const COLUMNS = [
  '#',
  'Step',
  'Status',
  'Started',
  'Completed',
  'Duration',
  'Retries',
  'Details',
  'State',
];

/** "850 ms", "12.3 s", "4 min 5 s", "2 h 3 min". */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
}

/**

 * What a row says besides its status: who skipped a failed step, who patched the state before
 * a retry (a `failed` row named StatePatched), why a step failed, or that a condition skipped it.
 */
export function stepDetails(s, previous, workflowSteps) {
  const stepIndex = (x) => x.index ?? x.stepIndex;
  if (s.status === 'failed' && s.error?.name === 'StatePatched') {
    return { kind: 'state-patched', status: 'state patched', text: s.error.message };
  }
  if (s.status === 'skipped') {
    // Skipped by a user: the row after the failed row of its step (PUT …/skip).
    if (previous && stepIndex(previous) === stepIndex(s) && previous.status === 'failed') {
      return { kind: 'skipped-by-user', text: `skipped by ${s.createdBy ?? 'anonymous'}` };
    }
    if (workflowSteps[stepIndex(s)]?.conditional) {
      return { kind: 'condition', text: 'its condition did not hold' };
    }
    return null;
  }
  if (s.status === 'failed' && s.error) {
    const e = s.error;
    const text =
      typeof e === 'object' && e !== null
        ? [e.name, e.message].filter(Boolean).join(': ')
        : String(e);
    return { kind: 'error', text };
  }
  return null;
}

const STOPPED = ['failed', 'api_unavailable', 'inconsistent_data'];

export function stepsView(processId, visit) {
  const body = el('tbody');
  const timeline = el('ol', { id: 'timeline', class: 'timeline', 'aria-label': 'Workflow steps' });
  const statePanel = el('section', { id: 'step-state', 'aria-live': 'polite' });
  const node = el('div', {}, [
    el('h2', { text: 'Timeline' }),
    timeline,
    el('h2', { text: 'Steps' }),
    el('div', { class: 'table-wrap' }, [
      el('table', { id: 'steps' }, [
        el('thead', {}, [
          el(
            'tr',
            {},
            COLUMNS.map((h) => el('th', { scope: 'col', text: h })),
          ),
        ]),
        body,
      ]),
    ]),
    statePanel,
  ]);
  let openStep = null;

  async function openState(s, label) {
    openStep = s.id;
    statePanel.replaceChildren(
      el('p', { class: 'muted', text: `Reading the state after ${label}…` }),
    );
    try {
      const t0 = window.performance.now();
      const r = await api('GET', `/api/processes/${processId}/state?step=${s.id}`);
      if (!visit.alive() || openStep !== s.id) return;
      const close = el('button', { type: 'button', id: 'step-state-close', text: 'Close' });
      close.addEventListener('click', () => {
        openStep = null;
        statePanel.replaceChildren();
      });
      statePanel.replaceChildren(
        el('h3', { text: `State after ${label}` }, []),
        close,
        el('details', { class: 'delta', open: true }, [
          el('summary', {
            text: `Changed by this step (${Object.keys(r.stateDelta ?? {}).length} keys)`,
          }),
          jsonTree(r.stateDelta ?? {}, { id: 'step-delta' }),
        ]),
        el('details', { class: 'full-state' }, [
          el('summary', { text: 'Whole state' }),
          jsonTree(r.state, { id: 'step-state-tree' }),
        ]),
      );
      statePanel.dataset.renderMs = String(Math.round(window.performance.now() - t0));
      close.focus();
    } catch (err) {
      if (visit.alive())
        statePanel.replaceChildren(el('p', { class: 'error', text: errorLine(err) }));
    }
  }

  /** The rows; `details(s, previous)` says what a row says besides its status (process.js). */
  function showTable(p, steps, groupOf, details) {
    const failing = STOPPED.includes(p.status)
      ? [...steps].reverse().find((s) => s.status === 'failed' && s.error?.name !== 'StatePatched')
      : undefined;
    const rows = [];
    let group = null;
    let previous = null;
    for (const s of steps) {
      const g = groupOf(s);
      if (g && g !== group) {
        rows.push(
          el('tr', { class: 'group-head', 'data-group': g }, [
            el('th', { colspan: COLUMNS.length, scope: 'rowgroup', text: g }),
          ]),
        );
      }
      group = g;
      const d = details(s, previous);
      const pill = statusPill(s.status);
      if (d?.status) {
        pill.textContent = d.status;
        pill.classList.add(`status-${d.kind}`);
        pill.title = `recorded as ${s.status}`;
      }
      const index = s.index ?? s.stepIndex;
      const stateButton = s.id
        ? el('button', {
            type: 'button',
            class: 'small show-state',
            'data-step': s.id,
            text: 'State',
            'aria-controls': 'step-state',
          })
        : '';
      if (stateButton)
        stateButton.addEventListener('click', () => void openState(s, `step ${index} ${s.name}`));
      const classes = ['step', g ? 'in-group' : '', s === failing ? 'failing' : ''].filter(Boolean);
      rows.push(
        el('tr', { 'data-step': s.id ?? '', 'data-kind': d?.kind, class: classes.join(' ') }, [
          el('td', { text: String(index) }),
          el('td', { text: s.name }),
          el('td', {}, [pill]),
          el('td', {}, [el('time', { datetime: s.startedAt ?? '', text: fullTime(s.startedAt) })]),
          el('td', {}, [
            el('time', { datetime: s.completedAt ?? '', text: fullTime(s.completedAt) }),
          ]),
          el('td', {
            class: 'duration',
            text:
              s.startedAt && s.completedAt
                ? duration(new Date(s.completedAt) - new Date(s.startedAt))
                : '',
          }),
          el('td', { text: String(s.retries ?? 0) }),
          el('td', {
            class: d ? `step-details step-${d.kind}` : 'step-details',
            text: d?.text ?? '',
          }),
          el('td', {}, [stateButton]),
        ]),
      );
      previous = s;
    }
    body.replaceChildren(...rows);
  }

  /** The workflow's steps in order: where each stands, the ones to come greyed out. */
  function showTimeline(p, steps, workflowSteps) {
    if (workflowSteps.length === 0) return timeline.replaceChildren();
    const lastRow = new Map();
    for (const s of steps) lastRow.set(s.index ?? s.stepIndex, s);
    const ended = ['completed', 'aborted'].includes(p.status);
    const entry = (w, i) => {
      const row = lastRow.get(i);
      let where;
      if (i === p.stepIndex && !ended)
        where =
          p.status === 'running' ? 'running' : STOPPED.includes(p.status) ? 'failed' : p.status;
      else if (row) where = row.status;
      else where = i > p.stepIndex && !ended ? 'upcoming' : 'not-run';
      return el(
        'li',
        {
          class: `timeline-step ${where}`,
          'data-index': i,
          'aria-current': i === p.stepIndex && !ended ? 'step' : undefined,
        },
        [
          el('span', { class: 'timeline-name', text: w.name }),
          ' ',
          el('span', { class: 'muted', text: where }),
        ],
      );
    };
    const items = [];
    for (let i = 0; i < workflowSteps.length;) {
      const g = workflowSteps[i].group;
      if (!g) {
        items.push(entry(workflowSteps[i], i));
        i++;
        continue;
      }
      const members = [];
      const start = i;
      while (i < workflowSteps.length && workflowSteps[i].group === g)
        members.push(entry(workflowSteps[i], i++));
      const here = p.stepIndex >= start && p.stepIndex < i && !ended;
      items.push(
        el('li', { class: 'timeline-group' }, [
          el('details', { open: here }, [
            el('summary', { text: `${g} (${members.length} steps)` }),
            el('ol', {}, members),
          ]),
        ]),
      );
    }
    timeline.replaceChildren(...items);
  }

  return {
    node,
    show(p, steps, workflowSteps, groupOf, details) {
      showTable(p, steps, groupOf, details);
      showTimeline(p, steps, workflowSteps);
    },
  };
}
