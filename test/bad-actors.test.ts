// Bad actors against the default loopback mode (no authentication, everyone `anonymous`): the
// browser's other tabs (a cross-site page, DNS rebinding, a websocket from another origin), and
// racing deletes. Real HTTP (node:http, to send the headers a browser would), a real Socket.IO
// client and a real Postgres.
import http from 'node:http';
import { io as connect } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { useHarness } from './support/harness.ts';

const h = useHarness({ executor: 'threadpool' });

interface Answer {
  status: number;
  code: string | undefined;
  body: any;
}

/** One request with exactly these headers (a `host` of our choosing too). */
function send(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
  port = h.api.port,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: {
          ...(body === undefined ? {} : { 'content-length': Buffer.byteLength(body) }),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          let parsed: any;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = text;
          }
          resolve({ status: res.statusCode ?? 0, code: parsed?.error?.code, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const processCount = async () =>
  (await h.db.pool.query(`SELECT count(*)::int AS n FROM orchestrator.processes`)).rows[0].n;

/** Whether a Socket.IO client with these handshake headers connects (and gets live events). */
const tryConnect = (headers: Record<string, string>, port = h.api.port) =>
  new Promise<string>((resolve) => {
    const socket = connect(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      extraHeaders: headers,
    });
    socket.on('engine:status', () => {
      socket.close();
      resolve('connected');
    });
    socket.on('connect_error', () => {
      socket.close();
      resolve('refused');
    });
  });

describe('the browser next door (no authentication)', () => {
  const own = () => `http://127.0.0.1:${h.api.port}`;

  it('a cross-site write starts nothing: no body, a form, text/plain, or JSON from another origin', async () => {
    const before = await processCount();
    const evil = { origin: 'http://evil.example' };
    const attempts: [string, Record<string, string>, string | undefined, number, string][] = [
      // What <form method=post> or fetch(…, {mode: 'no-cors'}) can send without asking first.
      ['no body, no type', evil, undefined, 403, 'origin_refused'],
      ['no body, no type, no origin', {}, undefined, 415, 'unsupported_media_type'],
      ['empty, no type', { ...evil }, '', 403, 'origin_refused'],
      ['empty, no type, no origin', {}, '', 415, 'unsupported_media_type'],
      [
        'empty form',
        { 'content-type': 'application/x-www-form-urlencoded' },
        '',
        415,
        'unsupported_media_type',
      ],
      ['text/plain', { 'content-type': 'text/plain' }, '{}', 415, 'unsupported_media_type'],
      ['empty text/plain', { 'content-type': 'text/plain' }, '', 415, 'unsupported_media_type'],
      // What a page of another origin sends once a preflight let it (it does not).
      [
        'JSON, other origin',
        { ...evil, 'content-type': 'application/json' },
        '{}',
        403,
        'origin_refused',
      ],
      [
        'JSON, origin null',
        { origin: 'null', 'content-type': 'application/json' },
        '{}',
        403,
        'origin_refused',
      ],
    ];
    const wrong: string[] = [];
    for (const [what, headers, body, status, code] of attempts) {
      const r = await send('POST', '/api/processes/noop', headers, body);
      if (r.status !== status || r.code !== code)
        wrong.push(`${what}: ${r.status} ${r.code}, expected ${status} ${code}`);
    }
    for (const [method, path] of [
      ['PUT', '/api/processes/resume-all'],
      ['PUT', '/api/settings/status'],
      ['DELETE', '/api/schedules/task_clean_up_tasks'],
      ['PUT', '/api/processes/00000000-0000-4000-8000-000000000000/abort'],
    ] as const) {
      const r = await send(method, path, {});
      if (r.status !== 415) wrong.push(`${method} ${path} without a type: ${r.status}`);
      const o = await send(method, path, { ...evil, 'content-type': 'application/json' });
      if (o.status !== 403) wrong.push(`${method} ${path} from evil.example: ${o.status}`);
    }
    expect(wrong).toEqual([]);
    expect(await processCount()).toBe(before);
    expect((await h.http.get('/api/schedules')).body.map((s: any) => s.name)).toContain(
      'task_clean_up_tasks',
    );
  });

  it('its own page, and clients that are no browser, still write', async () => {
    const json = { 'content-type': 'application/json' };
    const same = await send('POST', '/api/processes/noop', { ...json, origin: own() }, '{}');
    expect(same.status).toBe(201);
    const viaLocalhost = await send(
      'POST',
      '/api/processes/noop',
      { ...json, host: `localhost:${h.api.port}`, origin: `http://localhost:${h.api.port}` },
      '{}',
    );
    expect(viaLocalhost.status).toBe(201);
    // curl -X PUT -H 'content-type: application/json' …: no body, no origin.
    const abort = await send('PUT', `/api/processes/${same.body.id}/abort`, json);
    expect([204, 409]).toContain(abort.status);
    // A callback URL's token is its credential: answered as before, with a body or without.
    const cb = await h.http.start('callback_demo', {});
    const url = (await h.http.waitForStatus(cb, 'awaiting_callback')).currentState.callbackUrl;
    expect((await send('POST', `${new URL(url).pathname}/progress`, json, '{"p":1}')).status).toBe(
      204,
    );
    expect((await send('POST', new URL(url).pathname, {})).status).toBe(204);
    await h.http.waitForStatus(cb, 'completed');
  });

  it('refuses a Host that is not its own (DNS rebinding), for the API, the page and the websocket', async () => {
    const rebound = { host: `rebind.evil.example:${h.api.port}` };
    for (const path of ['/api/processes', '/api/workflows', '/', '/api/health']) {
      const r = await send('GET', path, rebound);
      expect(r.status, path).toBe(421);
      expect(r.code, path).toBe('host_refused');
    }
    const write = await send(
      'POST',
      '/api/processes/noop',
      { ...rebound, origin: `http://${rebound.host}`, 'content-type': 'application/json' },
      '{}',
    );
    expect(write.status).toBe(421);
    expect(await tryConnect({ host: rebound.host, origin: `http://${rebound.host}` })).toBe(
      'refused',
    );
    for (const host of [
      `127.0.0.1:${h.api.port}`,
      `localhost:${h.api.port}`,
      `[::1]:${h.api.port}`,
    ])
      expect((await send('GET', '/api/workflows', { host })).status, host).toBe(200);
  });

  it('ALLOWED_HOSTS and PUBLIC_URL name further hosts it answers to', async () => {
    const other = await h.startApi({
      ALLOWED_HOSTS: 'orchestrator.lan, ops.example.net:8443',
      PUBLIC_URL: 'https://keelson.example.org',
    });
    try {
      const get = (host: string) =>
        send('GET', '/api/workflows', { host }, undefined, other.port).then((r) => r.status);
      expect(await get('orchestrator.lan')).toBe(200);
      expect(await get(`orchestrator.lan:${other.port}`)).toBe(200);
      expect(await get('ops.example.net:8443')).toBe(200);
      expect(await get('ops.example.net:9999')).toBe(421);
      expect(await get('keelson.example.org')).toBe(200);
      expect(await get('evil.example')).toBe(421);
      // The page served through PUBLIC_URL (a proxy that passes the Host on) writes.
      const r = await send(
        'POST',
        '/api/processes/noop',
        {
          host: 'keelson.example.org',
          origin: 'https://keelson.example.org',
          'content-type': 'application/json',
        },
        '{}',
        other.port,
      );
      expect(r.status).toBe(201);
      await h.http.waitForStatus(r.body.id, 'completed');
    } finally {
      await other.close();
    }
  });

  it('refuses a websocket from a page of another origin, and takes its own', async () => {
    expect(await tryConnect({ origin: 'http://evil.example' })).toBe('refused');
    expect(await tryConnect({ origin: 'null' })).toBe('refused');
    expect(await tryConnect({ origin: own() })).toBe('connected');
    // A client that is no browser sends no Origin.
    expect(await tryConnect({})).toBe('connected');
  });
});

describe('racing deletes', () => {
  it('of two (or eight) deletes of one schedule at once, exactly one answers 204', async () => {
    const json = { 'content-type': 'application/json' };
    for (let round = 0; round < 5; round++) {
      const name = `race-${round}`;
      const created = await h.http.post('/api/schedules', {
        name,
        workflow: 'noop',
        cron: '0 3 * * *',
      });
      expect(created.status).toBe(201);
      const answers = await Promise.all(
        Array.from({ length: round === 0 ? 2 : 8 }, () =>
          send('DELETE', `/api/schedules/${name}`, json),
        ),
      );
      const statuses = answers.map((a) => a.status).sort();
      expect(
        statuses.filter((s) => s === 204),
        `round ${round}: ${statuses}`,
      ).toHaveLength(1);
      expect(statuses.filter((s) => s !== 204).every((s) => s === 404)).toBe(true);
      expect(
        answers.filter((a) => a.status === 404).every((a) => a.code === 'schedule_not_found'),
      ).toBe(true);
      expect((await h.http.get('/api/schedules')).body.map((s: any) => s.name)).not.toContain(name);
    }
  });
});
