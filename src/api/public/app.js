// The live view: a hash-routed page over the REST API, kept current by Socket.IO events.
//   #/                 processes, filtered by status and workflow (list.js)
//   #/start[/<name>]   start a workflow from its input form, page by page (start.js, paged-form.js)
//   #/process/<id>     one process: steps as they commit (grouped), state, retry or wake time,
//                      callback URL and progress, resume form, abort/retry/delete, skip step and
//                      retry with changed state (repair.js), note, locks, children or parent
//                      (process.js)
//   #/schedules        the schedules with their next run; add, replace and delete (schedules.js)
//   #/settings         engine, workers, queues, schedules, version (settings.js)
// With authentication on, a refused call shows the sign-in panel in place of the page (sign-in.js).
import { confirmAction } from './dialog.js';
import { listPage } from './list.js';
import { api, createVisit, errorLine, socket } from './page.js';
import { processPage } from './process.js';
import { schedulesPage } from './schedules.js';
import { settingsPage } from './settings.js';
import { setUpSignIn } from './sign-in.js';
import { startPage } from './start.js';

// ---- engine status (header): RUNNING, PAUSING (with the processes still running) or PAUSED ----
const engineBadge = document.getElementById('engine-status');
const engineRunning = document.getElementById('engine-running');
const engineToggle = document.getElementById('engine-toggle');
const connection = document.getElementById('connection');
let engine;
/** engine:status events seen: a PUT's answer older than an event that came after it is stale. */
let engineEvents = 0;

function showEngine(status) {
  engine = status;
  engineBadge.textContent = status.engineStatus;
  engineBadge.className = `badge ${status.engineStatus}`;
  engineBadge.title = `${status.runningProcesses} running`;
  // While pausing, the processes that have yet to reach the end of their step.
  engineRunning.hidden = status.engineStatus !== 'PAUSING';
  engineRunning.textContent = `${status.runningProcesses} running`;
  engineToggle.hidden = false;
  engineToggle.textContent = status.globalLock ? 'Resume engine' : 'Pause engine';
}
engineToggle.addEventListener('click', async () => {
  const seen = engineEvents;
  const pausing = !engine?.globalLock;
  const yes = await confirmAction(
    pausing
      ? {
          title: 'Pause the engine?',
          lines: [
            'No process starts or resumes until the engine is resumed; the starts and resumes asked for meanwhile are refused (503 engine_paused).',
            `The ${engine?.runningProcesses ?? 0} running processes finish the step they are in, then stop.`,
          ],
          confirmText: 'Pause engine',
          danger: true,
        }
      : {
          title: 'Resume the engine?',
          lines: ['Processes start and resume again; those waiting for the engine go on.'],
          confirmText: 'Resume engine',
        },
  );
  if (!yes) return;
  engineToggle.disabled = true;
  try {
    const status = await api('PUT', '/api/settings/status', { globalLock: !engine?.globalLock });
    // PAUSED may have come as an event before this answer (PAUSING): keep the newer one.
    if (engineEvents === seen) showEngine(status);
  } catch (err) {
    // 401: the sign-in panel says it.
    if (err.status !== 401) window.alert(errorLine(err));
  } finally {
    engineToggle.disabled = false;
  }
});
socket.on('engine:status', (status) => {
  engineEvents++;
  showEngine(status);
});
socket.on('connect', () => {
  connection.textContent = 'live';
  connection.className = 'badge online';
});
socket.on('disconnect', () => {
  connection.textContent = 'offline';
  connection.className = 'badge offline';
});

// ---- router ----
let visit = createVisit();

setUpSignIn({
  leave: () => {
    visit.leave();
    // Until signed in: the engine's state comes again with the live connection.
    engineToggle.hidden = true;
  },
  done: () => void route(),
});

async function route() {
  visit.leave();
  const current = (visit = createVisit());
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const parts = (path || '/').split('/').filter(Boolean);
  try {
    if (parts[0] === 'process' && parts[1]) {
      await processPage(decodeURIComponent(parts[1]), current);
    } else if (parts[0] === 'settings') {
      await settingsPage(current);
    } else if (parts[0] === 'schedules') {
      await schedulesPage(current);
    } else if (parts[0] === 'start') {
      await startPage(parts[1] && decodeURIComponent(parts[1]), current);
    } else {
      await listPage(new URLSearchParams(query), current);
    }
  } catch (err) {
    current.showError(err);
  }
}
window.addEventListener('hashchange', () => void route());
void route();
