// #/schedules : the schedules (pg-boss cron) with their next run, in local time and from now; a
// form to add one (or replace one of the same name) and a delete button on each. Schedules have
// no live events: the page refetches after its own changes and once a shown next run has passed.
import { confirmAction } from './dialog.js';
import { el } from './forms.js';
import { api, errorLine, untilText, view } from './page.js';
import { scheduleForm } from './schedule-form.js';

const COLUMNS = ['Name', 'Workflow', 'Cron', 'Time zone', 'Overlap', 'Input', 'Next run', ''];

export async function schedulesPage(visit) {
  const workflows = await api('GET', '/api/workflows');
  if (!visit.alive()) return;
  const listError = el('div', { id: 'schedules-error', class: 'error', role: 'alert' });
  const body = el('tbody');
  const table = el('table', { id: 'schedules' }, [
    el('thead', {}, [
      el(
        'tr',
        {},
        COLUMNS.map((h) => el('th', { text: h })),
      ),
    ]),
    body,
  ]);
  /** The schedules as last fetched, by name. */
  let known = new Map();
  const form = scheduleForm({
    workflows,
    exists: (name) => known.has(name),
    onSaved: visit.guard((schedule) => load(schedule.name).catch(visit.showError)),
  });
  view.replaceChildren(
    el('h1', { text: 'Schedules' }),
    listError,
    table,
    el('h2', { text: 'Add or replace a schedule' }),
    el('p', {
      class: 'muted',
      text: 'A schedule of an existing name replaces it. Cron: minute hour day month weekday.',
    }),
    form.node,
  );

  const nextRunText = (at) => `${new Date(at).toLocaleString()} (${untilText(at)})`;
  const row = (s) => {
    const remove = el('button', {
      type: 'button',
      class: 'danger schedule-delete',
      text: 'Delete',
    });
    remove.addEventListener('click', async () => {
      const sure = await confirmAction({
        title: `Delete schedule ${s.name}?`,
        lines: [
          `No more ${s.workflow} processes start on its times (${s.cron}, ${s.timezone}).`,
          'Processes it started already go on.',
        ],
        confirmText: 'Delete schedule',
        danger: true,
      });
      if (!sure) return;
      remove.disabled = true;
      listError.textContent = '';
      try {
        await api('DELETE', `/api/schedules/${encodeURIComponent(s.name)}`);
      } catch (err) {
        // 404 schedule_not_found: deleted elsewhere meanwhile; the refetch shows it gone.
        if (visit.alive()) listError.textContent = errorLine(err);
      }
      if (visit.alive()) await load().catch(visit.showError);
    });
    const edit = el('button', { type: 'button', class: 'schedule-edit', text: 'Edit' });
    edit.addEventListener('click', () => form.fill(s));
    const input = s.input && JSON.stringify(s.input);
    return el('tr', { 'data-name': s.name }, [
      el('td', { class: 'mono', text: s.name }),
      el('td', { text: s.workflow }),
      el('td', {}, [el('code', { class: 'cron', text: s.cron })]),
      el('td', { text: s.timezone }),
      el('td', { class: 'overlap', text: s.overlap ? 'yes' : 'no' }),
      el('td', { class: 'mono muted', text: input && input !== '{}' ? input : '' }),
      el('td', {}, [
        s.nextRunAt
          ? el('span', {
              class: 'next-run',
              'data-at': s.nextRunAt,
              title: s.nextRunAt,
              text: nextRunText(s.nextRunAt),
            })
          : el('span', { class: 'next-run muted', text: 'none' }),
      ]),
      el('td', {}, [el('div', { class: 'row-actions' }, [edit, remove])]),
    ]);
  };

  /** Fetches and shows the list; the row of `flash` (just saved) is highlighted. */
  async function load(flash) {
    const schedules = await api('GET', '/api/schedules');
    if (!visit.alive()) return;
    known = new Map(schedules.map((s) => [s.name, s]));
    body.replaceChildren(
      ...(schedules.length
        ? schedules.map((s) => {
            const tr = row(s);
            if (s.name === flash) tr.classList.add('flash');
            return tr;
          })
        : [el('tr', {}, [el('td', { colspan: COLUMNS.length, class: 'muted', text: 'None.' })])]),
    );
  }
  await load();

  // The countdowns; a next run passed means a tick: fetch the one after it (at most every 5 s).
  let fetchedAt = Date.now();
  visit.every(1000, () => {
    let passed = false;
    for (const node of body.querySelectorAll('.next-run[data-at]')) {
      node.textContent = nextRunText(node.dataset.at);
      if (new Date(node.dataset.at).getTime() < Date.now()) passed = true;
    }
    if (passed && Date.now() - fetchedAt > 5000) {
      fetchedAt = Date.now();
      load().catch(visit.showError);
    }
  });
}
