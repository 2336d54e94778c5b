// #/settings : the engine (status, pause/resume after a confirmation), the workers online with
// their queues and concurrency, queued and active jobs per queue, the schedules, the version.
import { el } from './forms.js';
import { api, fullTime, timeEl, view } from './page.js';

const table = (id, heads, rows) =>
  el('div', { class: 'table-wrap' }, [
    el('table', { id }, [
      el('thead', {}, [
        el(
          'tr',
          {},
          heads.map((h) => el('th', { scope: 'col', text: h })),
        ),
      ]),
      el(
        'tbody',
        {},
        rows.length
          ? rows.map((cells) =>
              el(
                'tr',
                {},
                cells.map((c) => el('td', {}, [c])),
              ),
            )
          : [el('tr', {}, [el('td', { colspan: heads.length, class: 'muted', text: 'none' })])],
      ),
    ]),
  ]);

export async function settingsPage(visit) {
  const [engine, workers, schedules, doc] = await Promise.all([
    api('GET', '/api/settings/status'),
    api('GET', '/api/settings/worker-status'),
    api('GET', '/api/schedules'),
    api('GET', '/api/openapi.json'),
  ]);
  if (!visit.alive()) return;
  const status = el('span', {
    id: 'settings-engine-status',
    class: `badge ${engine.engineStatus}`,
    text: engine.engineStatus,
  });
  const running = el('span', { class: 'muted', text: `${engine.runningProcesses} running` });
  // The header's button pauses and resumes (with its confirmation); this one stands for it here.
  const toggle = el('button', {
    type: 'button',
    id: 'settings-engine-toggle',
    text: engine.globalLock ? 'Resume engine' : 'Pause engine',
  });
  toggle.addEventListener('click', () => document.getElementById('engine-toggle')?.click());
  visit.on({
    'engine:status': (s) => {
      status.textContent = s.engineStatus;
      status.className = `badge ${s.engineStatus}`;
      running.textContent = `${s.runningProcesses} running`;
      toggle.textContent = s.globalLock ? 'Resume engine' : 'Pause engine';
    },
  });
  view.replaceChildren(
    el('h1', { text: 'Settings' }),
    el('section', { id: 'settings-engine' }, [
      el('h2', { text: 'Engine' }),
      el('p', {}, [status, ' ', running, ' ', toggle]),
    ]),
    el('section', { id: 'settings-workers' }, [
      el('h2', { text: `Workers (${workers.executor} executor, ${workers.workersOnline} online)` }),
      table(
        'workers',
        ['Worker', 'Host', 'PID', 'Queues', 'Concurrency', 'Started', 'Last heartbeat'],
        workers.workers.map((w) => [
          w.id,
          w.hostname,
          String(w.pid),
          w.queues.join(', '),
          String(w.concurrency),
          timeEl(w.startedAt),
          timeEl(w.heartbeatAt),
        ]),
      ),
    ]),
    el('section', { id: 'settings-queues' }, [
      el('h2', { text: 'Queues' }),
      table(
        'queues',
        ['Queue', 'Queued', 'Active'],
        workers.queues.map((q) => [q.name, String(q.queued), String(q.active)]),
      ),
    ]),
    el('section', { id: 'settings-schedules' }, [
      el('h2', {}, ['Schedules ', el('a', { href: '#/schedules', text: '(manage)' })]),
      table(
        'settings-schedule-list',
        ['Name', 'Workflow', 'Cron', 'Next run'],
        schedules.map((s) => [
          s.name,
          s.workflow,
          `${s.cron} (${s.timezone})`,
          s.nextRunAt ? fullTime(s.nextRunAt) : '',
        ]),
      ),
    ]),
    el('section', { id: 'settings-version' }, [
      el('h2', { text: 'Version' }),
      el('p', {
        id: 'version',
        text: `${doc.info?.title ?? 'Keelson'} ${doc.info?.version ?? ''}`,
      }),
    ]),
  );
}
