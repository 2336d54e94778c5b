// Parts of a process's page: the resource locks it holds or waits for, and its latest callback
// (URL while pending, expiry, progress).
import { el } from './forms.js';
import { statusPill, time, untilText } from './page.js';

/** The resource locks of a workflow with lockKeys: held, and waited for (lockMode queue). */
export function showLocks(locksBox, p) {
  const held = p.locks?.held ?? [];
  const waitingFor = p.locks?.waitingFor ?? [];
  if (held.length === 0 && waitingFor.length === 0) return locksBox.replaceChildren();
  const keys = (list, cls) =>
    list.length
      ? el(
          'span',
          { class: cls },
          list.map((k) => el('code', { class: 'lock-key mono', text: k })),
        )
      : el('span', { class: `${cls} muted`, text: 'none' });
  locksBox.replaceChildren(
    el('h2', { text: 'Locks' }),
    el('dl', { class: 'facts', id: 'locks' }, [
      el('dt', { text: 'Holds' }),
      el('dd', {}, [keys(held, 'locks-held')]),
      el('dt', { text: 'Waiting for' }),
      el('dd', {}, [keys(waitingFor, 'locks-waiting')]),
    ]),
  );
}

/** The latest callback: where to post while it is pending, until when, and its progress. */
export function showCallback(callbackBox, p) {
  const cb = p.callback;
  if (!cb) return callbackBox.replaceChildren();
  const pending = p.status === 'awaiting_callback' && cb.status === 'pending';
  const url = cb.url ?? cb.path;
  const rows = [
    [
      'Status',
      el('span', {
        id: 'callback-status',
        class: `status status-cb-${cb.status}`,
        text: cb.status,
      }),
    ],
  ];
  if (pending) {
    rows.push(['URL', el('code', { id: 'callback-url', class: 'mono', text: url })]);
    if (cb.expiresAt) {
      rows.push([
        'Expires',
        el('span', {
          id: 'callback-expires',
          'data-at': cb.expiresAt,
          title: new Date(cb.expiresAt).toLocaleString(),
          text: `${time(cb.expiresAt)} (${untilText(cb.expiresAt)})`,
        }),
      ]);
    }
  } else if (cb.resolvedAt) {
    rows.push(['Resolved', el('span', { text: new Date(cb.resolvedAt).toLocaleString() })]);
  }
  if (cb.progress !== null && cb.progress !== undefined) {
    rows.push([
      'Progress',
      el('div', { id: 'callback-progress' }, [
        progressView(cb.progress),
        cb.progressAt ? el('div', { class: 'muted', text: `at ${time(cb.progressAt)}` }) : '',
      ]),
    ]);
  }
  callbackBox.replaceChildren(
    el('h2', { text: 'Callback' }),
    el(
      'dl',
      { class: 'facts' },
      rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, [v])]),
    ),
  );
}

/** Callback progress: a bar when it has a numeric `percent`, and the rest as JSON. */
function progressView(progress) {
  const percent =
    progress && typeof progress === 'object' && typeof progress.percent === 'number'
      ? Math.max(0, Math.min(100, progress.percent))
      : null;
  const rest =
    percent === null
      ? progress
      : Object.fromEntries(Object.entries(progress).filter(([k]) => k !== 'percent'));
  const json =
    percent !== null && Object.keys(rest).length === 0
      ? null
      : el('pre', { class: 'progress-json', text: JSON.stringify(rest, null, 2) });
  if (percent === null) return json;
  return el('div', {}, [
    el('div', { class: 'progress-bar', role: 'progressbar', 'aria-valuenow': percent }, [
      el('div', { class: 'progress-fill', style: `width: ${percent}%` }),
    ]),
    el('span', { class: 'progress-percent', text: `${percent}%` }),
    json,
  ]);
}

/** The children a parent started, with their status and the step that started each. */
export function childrenTable(children, workflowSteps) {
  const done = children.filter((c) => c.status === 'completed').length;
  return [
    el('h2', { text: `Child processes (${done} of ${children.length} completed)` }),
    el('div', { class: 'table-wrap' }, [
      el('table', { id: 'children' }, [
        el('thead', {}, [
          el(
            'tr',
            {},
            ['Process', 'Workflow', 'Status', 'Started by step'].map((h) =>
              el('th', { scope: 'col', text: h }),
            ),
          ),
        ]),
        el(
          'tbody',
          {},
          children.map((c) =>
            el('tr', { class: 'child', 'data-id': c.id }, [
              el('td', {}, [
                el('a', {
                  class: 'child-link mono',
                  href: `#/process/${encodeURIComponent(c.id)}`,
                  text: c.id,
                }),
              ]),
              el('td', { text: c.workflow }),
              el('td', {}, [statusPill(c.status)]),
              el('td', { text: workflowSteps[c.parentStep]?.name ?? `#${c.parentStep}` }),
            ]),
          ),
        ),
      ]),
    ]),
  ];
}
