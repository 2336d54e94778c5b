// Hostile input at every route: wrong types, huge and deeply nested bodies, text Postgres cannot
// store, SQL and script fragments, malformed ids, wrong methods and content types. Each must get a
// 4xx with a stable code (never a 5xx, a stack trace or SQL), and nothing may be written.
import { beforeAll, describe, expect, it } from 'vitest';
import { useHarness } from './support/harness.ts';

const h = useHarness({ executor: 'threadpool' });
/** Processes in the states the routes act on. */
const ids = { suspended: '', completedTask: '', awaiting: '', callbackPath: '' };

beforeAll(async () => {
  ids.suspended = await h.http.start('hello', { name: 'Ada' });
  await h.http.waitForStatus(ids.suspended, 'suspended');
  ids.completedTask = await h.http.start('noop_task');
  await h.http.waitForStatus(ids.completedTask, 'completed');
  ids.awaiting = await h.http.start('callback_demo', {});
  const p = await h.http.waitForStatus(ids.awaiting, 'awaiting_callback');
  ids.callbackPath = new URL(p.currentState.callbackUrl).pathname;
});

/** Everything a request could write, to compare before and after. */
async function snapshot() {
  const { rows } = await h.db.pool.query(
    `SELECT (SELECT count(*)::int FROM orchestrator.processes) AS processes,
            (SELECT count(*)::int FROM orchestrator.process_steps) AS steps,
            (SELECT count(*)::int FROM orchestrator.input_states) AS inputs,
            (SELECT count(*)::int FROM orchestrator.callbacks WHERE status = 'pending') AS pending,
            (SELECT count(*)::int FROM pgboss.schedule) AS schedules,
            (SELECT global_lock FROM orchestrator.engine_settings) AS locked,
            (SELECT string_agg(id || status || coalesce(note, '') || version, ',' ORDER BY id)
               FROM orchestrator.processes) AS rows`,
  );
  return rows[0];
}

interface Attack {
  what: string;
  method: string;
  path: string;
  /** A raw body (string) or a value sent as JSON. */
  body?: unknown;
  contentType?: string;
  /** Expected status; default: any 4xx. */
  status?: number;
  code?: string;
}

const deep = (n: number): unknown => (n === 0 ? 1 : { a: deep(n - 1) });
const UUID = '00000000-0000-4000-8000-000000000000';
const SQL = "x'); DROP TABLE orchestrator.processes; --";
const SCRIPT = '<script>alert(1)</script>';
const BAD_IDS = [
  'not-a-uuid',
  '00000000-0000-4000-8000-00000000000g',
  '%00',
  encodeURIComponent(SQL),
  'a'.repeat(500),
  '%F0%9F%91%8B',
];

function attacks(): Attack[] {
  const a: Attack[] = [];
  const bodies: [string, unknown, string?][] = [
    ['a number', 5, 'validation_error'],
    ['a string', '"x"', 'validation_error'],
    ['null', 'null', undefined],
    ['an array of numbers', [1, 2], 'validation_error'],
    ['a huge body', { name: 'x'.repeat(5 * 1024 * 1024) }, 'payload_too_large'],
    ['deep nesting', { name: 'x', extra: deep(100) }, 'state_too_large'],
    ['a NUL in a value', '{"name":"a\\u0000b"}', 'invalid_text'],
    ['a NUL in a key', '{"na\\u0000me":"x"}', 'invalid_text'],
    ['a lone high surrogate', '{"name":"a\\ud800b"}', 'invalid_text'],
    ['a lone low surrogate', '{"name":"\\udc00"}', 'invalid_text'],
    ['invalid JSON', '{"name":', 'invalid_json'],
    ['wrong types', { name: 42 }, 'validation_error'],
  ];
  // Starts: hello wants {name: string(min 1)}.
  for (const [what, body, code] of bodies) {
    if (what === 'null') continue; // null is an empty body: hello's name is missing, a 400 too
    a.push({
      what: `start with ${what}`,
      method: 'POST',
      path: '/api/processes/hello',
      body,
      code,
    });
  }
  a.push({
    what: 'start with null',
    method: 'POST',
    path: '/api/processes/hello',
    body: 'null',
    code: 'validation_error',
  });
  a.push({
    what: 'start, text/plain',
    method: 'POST',
    path: '/api/processes/noop',
    body: '{}',
    contentType: 'text/plain',
    status: 415,
    code: 'unsupported_media_type',
  });
  a.push({
    what: 'start, a form',
    method: 'POST',
    path: '/api/processes/noop',
    body: 'a=1',
    contentType: 'application/x-www-form-urlencoded',
    status: 415,
  });
  a.push({
    what: 'start, unknown key',
    method: 'POST',
    path: '/api/processes/hello',
    body: { name: 'x', [SQL]: SCRIPT },
    status: 400,
  });
  for (const name of [
    encodeURIComponent(SQL),
    encodeURIComponent(SCRIPT),
    'HELLO',
    '%00',
    'a'.repeat(300),
  ])
    a.push({
      what: `start of workflow ${name.slice(0, 20)}`,
      method: 'POST',
      path: `/api/processes/${name}`,
      body: {},
      status: 404,
    });
  // Resumes of the suspended hello: {confirmed: boolean}.
  for (const [what, body, code] of bodies)
    a.push({
      what: `resume with ${what}`,
      method: 'PUT',
      path: `/api/processes/${ids.suspended}/resume`,
      body,
      ...(what === 'null' ? {} : { code }),
    });
  a.push({
    what: 'resume, multi-page overflow',
    method: 'PUT',
    path: `/api/processes/${ids.suspended}/resume`,
    body: [{ confirmed: true }, {}],
    code: 'validation_error',
  });
  // Malformed ids everywhere an id goes.
  for (const id of BAD_IDS) {
    for (const [method, suffix, body] of [
      ['GET', '', undefined],
      ['DELETE', '', undefined],
      ['PATCH', '', { note: 'x' }],
      ['PUT', '/resume', {}],
      ['PUT', '/abort', undefined],
      ['POST', `/callback/${'A'.repeat(43)}`, {}],
    ] as const)
      a.push({
        what: `${method} ${suffix || 'process'} of id ${id.slice(0, 12)}`,
        method,
        path: `/api/processes/${id}${suffix}`,
        body,
        status: 400,
        code: 'invalid_id',
      });
  }
  // Ids that are well formed but name nothing.
  for (const [method, suffix, body] of [
    ['GET', '', undefined],
    ['DELETE', '', undefined],
    ['PATCH', '', { note: 'x' }],
    ['PUT', '/resume', {}],
    ['PUT', '/abort', undefined],
  ] as const)
    a.push({
      what: `${method} ${suffix || 'process'} of an unknown id`,
      method,
      path: `/api/processes/${UUID}${suffix}`,
      body,
      status: 404,
      code: 'process_not_found',
    });
  // Callbacks: tokens of every wrong shape, payloads Postgres cannot store.
  const [cbBase] = [ids.callbackPath.slice(0, ids.callbackPath.lastIndexOf('/'))];
  for (const token of [
    'short',
    encodeURIComponent(SQL),
    'A'.repeat(43),
    'A'.repeat(44),
    '%00'.repeat(15),
  ])
    a.push({
      what: `callback with token ${token.slice(0, 10)}`,
      method: 'POST',
      path: `${cbBase}/${token}`,
      body: { ok: 1 },
      status: 404,
      code: 'callback_not_found',
    });
  a.push({
    what: 'callback with a NUL',
    method: 'POST',
    path: ids.callbackPath,
    body: '{"r":"\\u0000"}',
    code: 'invalid_text',
  });
  a.push({
    what: 'callback, too deep',
    method: 'POST',
    path: ids.callbackPath,
    body: deep(80),
    code: 'state_too_large',
  });
  a.push({
    what: 'callback, too big',
    method: 'POST',
    path: ids.callbackPath,
    body: { r: 'x'.repeat(5 * 1024 * 1024) },
    status: 413,
  });
  a.push({
    what: 'progress, text/plain',
    method: 'POST',
    path: `${ids.callbackPath}/progress`,
    body: '50%',
    contentType: 'text/plain',
    status: 415,
  });
  // Notes, deletes.
  for (const body of [
    { note: 5 },
    { note: 'x'.repeat(10_001) },
    { note: SCRIPT, extra: 1 },
    '{"note":"\\ud800"}',
    [],
    'null',
  ])
    a.push({
      what: `note ${JSON.stringify(body).slice(0, 20)}`,
      method: 'PATCH',
      path: `/api/processes/${ids.suspended}`,
      body,
    });
  a.push({
    what: 'delete a workflow',
    method: 'DELETE',
    path: `/api/processes/${ids.suspended}`,
    status: 400,
    code: 'not_a_task',
  });
  a.push({
    what: 'note, huge',
    method: 'PATCH',
    path: `/api/processes/${ids.suspended}`,
    body: { note: 'x'.repeat(100 * 1024) },
    status: 413,
  });
  // Queries.
  for (const q of [
    'status=bogus',
    `status=${encodeURIComponent(SQL)}`,
    'limit=-1',
    'limit=1e9',
    'limit=abc',
    'offset=-5',
    `sort=${encodeURIComponent(SQL)}`,
    'sort=startedAt:sideways',
    'isTask=maybe',
    'unknown=1',
    `createdBy=${encodeURIComponent('a\u0000b')}`,
    'workflow=%00x',
  ])
    a.push({
      what: `list ?${q.slice(0, 30)}`,
      method: 'GET',
      path: `/api/processes?${q}`,
      status: 400,
    });
  // Settings and schedules.
  for (const body of [
    { globalLock: 'yes' },
    { globalLock: true, more: 1 },
    [],
    'null',
    '{"globalLock":tru',
  ])
    a.push({
      what: `settings ${JSON.stringify(body).slice(0, 20)}`,
      method: 'PUT',
      path: '/api/settings/status',
      body,
      status: 400,
    });
  for (const body of [
    { name: SQL, workflow: 'noop_task', cron: '* * * * *' },
    { name: 'x', workflow: 'noop_task', cron: `* * * * * ${SQL}` },
    { name: 'x', workflow: 'noop_task', cron: '* * * * *', timezone: SCRIPT },
    { name: 'x', workflow: SQL, cron: '* * * * *' },
    { name: 'x', workflow: 'noop_task', cron: '* * * * *', input: deep(50) },
    { name: 'x\u0000', workflow: 'noop_task', cron: '* * * * *' },
    'x'.repeat(10),
  ])
    a.push({
      what: `schedule ${JSON.stringify(body).slice(0, 30)}`,
      method: 'POST',
      path: '/api/schedules',
      body,
      status: 400,
    });
  a.push({
    what: 'delete an unknown schedule',
    method: 'DELETE',
    path: `/api/schedules/${encodeURIComponent(SQL)}`,
    status: 404,
    code: 'schedule_not_found',
  });
  // Wrong methods.
  for (const [method, path] of [
    ['DELETE', '/api/workflows'],
    ['POST', '/api/workflows/hello'],
    ['PATCH', '/api/health'],
    ['PUT', '/api/schedules'],
    ['POST', '/api/settings/status'],
    ['DELETE', '/api/processes'],
    ['GET', '/api/processes/resume-all'],
    ['POST', `/api/processes/${ids.suspended}/abort`],
  ] as const)
    a.push({
      what: `${method} ${path}`,
      method,
      path,
      status: 404,
      code: method === 'GET' ? 'invalid_id' : 'route_not_found',
    });
  return a;
}

async function send(x: Attack) {
  const raw = typeof x.body === 'string';
  const res = await fetch(h.api.url + x.path, {
    method: x.method,
    // Writes say JSON also without a body (as the API asks without authentication), unless the
    // attack says otherwise.
    headers:
      x.contentType !== undefined || x.body !== undefined || x.method !== 'GET'
        ? { 'content-type': x.contentType ?? 'application/json' }
        : {},
    body: x.body === undefined ? undefined : raw ? (x.body as string) : JSON.stringify(x.body),
  });
  const text = await res.text();
  let body: { error?: { code?: string; message?: string } } | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

describe('hostile input', () => {
  it('every route answers a 4xx with a stable code, leaks nothing and writes nothing', async () => {
    const before = await snapshot();
    const list = attacks();
    const wrong: string[] = [];
    for (const x of list) {
      const r = await send(x);
      const code = r.body?.error?.code;
      const problems = [
        r.status < 400 || r.status >= 500 ? `status ${r.status}` : '',
        x.status !== undefined &&
        r.status !== x.status &&
        !(x.method === 'GET' && x.status === 404 && r.status === 400)
          ? `status ${r.status}, expected ${x.status}`
          : '',
        typeof code !== 'string' || !/^[a-z_]+$/.test(code) ? `code ${String(code)}` : '',
        x.code !== undefined && code !== x.code ? `code ${code}, expected ${x.code}` : '',
        /\bat .*\(.*:\d+:\d+\)|node_modules|relation \\"|violates|duplicate key|syntax error at|invalid input syntax/.test(
          r.text,
        )
          ? 'a stack trace or SQL in the answer'
          : '',
      ].filter(Boolean);
      if (problems.length)
        wrong.push(
          `${x.what} (${x.method} ${x.path.slice(0, 60)}): ${problems.join('; ')} — ${r.text.slice(0, 160)}`,
        );
    }
    expect(wrong).toEqual([]);
    expect(list.length).toBeGreaterThan(100);
    expect(await snapshot()).toEqual(before);
  }, 120_000);

  it('security headers are set, and CORS is off', async () => {
    const res = await fetch(`${h.api.url}/api/health`, {
      headers: { origin: 'https://evil.example' },
    });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(res.headers.get('strict-transport-security')).toBeTruthy();
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const page = await fetch(`${h.api.url}/`);
    expect(page.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  });

  it('CORS_ORIGINS lets the configured origins in, and only them', async () => {
    const other = await h.startApi({ CORS_ORIGINS: 'https://ops.example.net' });
    try {
      const pre = await fetch(`${other.url}/api/processes`, {
        method: 'OPTIONS',
        headers: { origin: 'https://ops.example.net', 'access-control-request-method': 'POST' },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe('https://ops.example.net');
      const evil = await fetch(`${other.url}/api/processes`, {
        headers: { origin: 'https://evil.example' },
      });
      expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await other.close();
    }
  });
});
