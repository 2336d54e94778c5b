// The live view: a hash-routed page over the REST API, kept current by Socket.IO events.
//   #/                 processes, filtered by status and workflow (list.js)
//   #/start[/<name>]   start a workflow from its input form, page by page (start.js, paged-form.js)
//   #/process/<id>     one process: steps as they commit (grouped), state, retry time, callback
//                      URL and progress, resume form, abort/retry (process.js)
import { listPage } from './list.js';
import { api, createVisit, socket } from './page.js';
import { processPage } from './process.js';
import { startPage } from './start.js';

// ---- engine status (header) ----
const engineBadge = document.getElementById('engine-status');
const engineToggle = document.getElementById('engine-toggle');
const connection = document.getElementById('connection');
let engine;

function showEngine(status) {
  engine = status;
  engineBadge.textContent = status.engineStatus;
  engineBadge.className = `badge ${status.engineStatus}`;
  engineBadge.title = `${status.runningProcesses} running`;
  engineToggle.hidden = false;
  engineToggle.textContent = status.globalLock ? 'Resume engine' : 'Pause engine';
}
engineToggle.addEventListener('click', async () => {
  try {
    showEngine(await api('PUT', '/api/settings/status', { globalLock: !engine?.globalLock }));
  } catch (err) {
    window.alert(err.message);
  }
});
socket.on('engine:status', showEngine);
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

async function route() {
  visit.leave();
  const current = (visit = createVisit());
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const parts = (path || '/').split('/').filter(Boolean);
  try {
    if (parts[0] === 'process' && parts[1]) {
      await processPage(decodeURIComponent(parts[1]), current);
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
