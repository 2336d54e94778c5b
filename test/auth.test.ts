// Authentication (static tokens, OIDC from a local test issuer, Socket.IO handshakes) and
// authorization (users recorded, workflow hooks, assignee roles), against a real Postgres.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { io as connect } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useHarness } from './support/harness.ts';
import { fixtures } from './support/paths.ts';

const ALICE = 'alice-token-0123456789';
const CI = 'ci-token-0123456789abcdef';

/** A local OIDC issuer: discovery document and a JWKS whose keys can be rotated. */
async function startIssuer() {
  const keys: { kid: string; privateKey: CryptoKey; jwk: JWK }[] = [];
  const addKey = async (kid: string) => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    keys.push({ kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256' } });
  };
  await addKey('k1');
  let jwksFetches = 0;
  const server = http.createServer((req, res) => {
    const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration')
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }));
    else if (req.url === '/jwks') {
      jwksFetches++;
      res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
    } else res.writeHead(404).end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    addKey,
    jwksFetches: () => jwksFetches,
    async token(
      claims: Record<string, unknown>,
      /** `exp: null`: a token without an expiry. */
      o: { kid?: string; exp?: string | number | null; aud?: string; iss?: string } = {},
    ) {
      const key = keys.find((k) => k.kid === (o.kid ?? 'k1'))!;
      const jwt = new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: key.kid })
        .setIssuer(o.iss ?? issuer)
        .setAudience(o.aud ?? 'orchestrator')
        .setIssuedAt();
      if (o.exp !== null) jwt.setExpirationTime(o.exp ?? '5m');
      return jwt.sign(key.privateKey);
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let issuer: Awaited<ReturnType<typeof startIssuer>>;

// The issuer starts before the API, whose configuration names it, and stops after it.
beforeAll(async () => {
  issuer = await startIssuer();
});
afterAll(async () => {
  await issuer?.close();
});
const h = useHarness({
  executor: 'threadpool',
  env: () => ({
    HOST: '0.0.0.0',
    API_TOKENS: `alice=${ALICE},ci=${CI}`,
    OIDC_ISSUER: issuer.issuer,
    OIDC_AUDIENCE: 'orchestrator',
    OIDC_MAX_TOKEN_LIFETIME_SECONDS: '3600',
    WORKFLOWS_DIR: fixtures('workflows-auth'),
  }),
});

const base = () => `http://127.0.0.1:${h.api.port}`;
async function call(method: string, path: string, token?: string, body?: unknown) {
  const res = await fetch(base() + path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}
async function waitFor(id: string, token: string, pred: (p: any) => boolean) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const p = (await call('GET', `/api/processes/${id}`, token)).body;
    if (pred(p)) return p;
    if (Date.now() > deadline) throw new Error(`timed out: ${JSON.stringify(p).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}
const rows = async () =>
  (
    await h.db.pool.query(
      `SELECT (SELECT count(*)::int FROM orchestrator.processes) AS p,
              (SELECT count(*)::int FROM orchestrator.process_steps) AS s`,
    )
  ).rows[0];
const stepUsers = async (id: string) =>
  (
    await h.db.pool.query(
      `SELECT name, status, created_by AS "createdBy" FROM orchestrator.process_steps
        WHERE process_id = $1 ORDER BY id`,
      [id],
    )
  ).rows.map((r) => `${r.name}:${r.status}:${r.createdBy}`);

describe('bind guard', () => {
  it('refuses to listen beyond loopback without authentication, unless AUTH=none', async () => {
    await expect(h.startApi({ HOST: '0.0.0.0' })).rejects.toThrow(
      /Refusing to listen on 0.0.0.0 without authentication. Set API_TOKENS/,
    );
    const open = await h.startApi({ HOST: '0.0.0.0', AUTH: 'none' });
    try {
      const r = await fetch(`http://127.0.0.1:${open.port}/api/workflows`);
      expect(r.status).toBe(200);
    } finally {
      await open.close();
    }
  });
});

describe('static tokens', () => {
  it('401 without a token or with a bad one, writing nothing; open: health, docs of the page', async () => {
    const before = await rows();
    for (const token of [undefined, 'not-a-token', `${ALICE}x`]) {
      const r = await call('POST', '/api/processes/hello', token, { name: 'x' });
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('unauthorized');
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect((await call('GET', '/api/processes', undefined)).status).toBe(401);
    expect((await call('GET', '/api/no-such-route', undefined)).status).toBe(401);
    expect(await rows()).toEqual(before);
    expect((await call('GET', '/api/health')).status).toBe(200);
    expect((await fetch(`${base()}/`)).status).toBe(200);
  });

  it('records who started, resumed, retried and aborted on the process and its step rows', async () => {
    const hello = (await call('POST', '/api/processes/hello', ALICE, { name: 'Ada' })).body.id;
    await waitFor(hello, ALICE, (p) => p.status === 'suspended');
    expect(
      (await call('PUT', `/api/processes/${hello}/resume`, CI, { confirmed: true })).status,
    ).toBe(204);
    const done = await waitFor(hello, CI, (p) => p.status === 'completed');
    expect(done.createdBy).toBe('alice');
    expect(await stepUsers(hello)).toEqual([
      'Greet:success:alice',
      'Confirm:suspend:alice',
      'Confirm:success:ci',
      'Finish:success:ci',
    ]);

    const flaky = (await call('POST', '/api/processes/flaky', ALICE, { failTimes: 1 })).body.id;
    await waitFor(flaky, ALICE, (p) => p.status === 'failed');
    expect((await call('PUT', `/api/processes/${flaky}/resume`, CI)).status).toBe(204);
    await waitFor(flaky, ALICE, (p) => p.status === 'completed');
    expect(await stepUsers(flaky)).toEqual(['Flaky:failed:alice', 'Flaky:success:ci']);

    const cb = (await call('POST', '/api/processes/callback_demo', ALICE, {})).body.id;
    const url = (await waitFor(cb, ALICE, (p) => p.status === 'awaiting_callback')).currentState
      .callbackUrl as string;
    // The callback URL needs no bearer token: its own token is the credential.
    expect((await call('POST', new URL(url).pathname, undefined, { ok: 1 })).status).toBe(204);
    await waitFor(cb, ALICE, (p) => p.status === 'completed');
    expect(await stepUsers(cb)).toEqual([
      'Run job:awaiting_callback:alice',
      'Run job:success:callback',
      'Finish:success:callback',
    ]);

    const hello2 = (await call('POST', '/api/processes/hello', ALICE, { name: 'Bo' })).body.id;
    await waitFor(hello2, ALICE, (p) => p.status === 'suspended');
    expect((await call('PUT', `/api/processes/${hello2}/abort`, CI)).status).toBe(204);
    expect((await stepUsers(hello2)).at(-1)).toBe('Abort:abort:ci');
  });
});

describe('Socket.IO', () => {
  const tryConnect = (auth?: { token: string }) =>
    new Promise<string>((resolve) => {
      const socket = connect(base(), { transports: ['websocket'], reconnection: false, auth });
      socket.on('connect', () => {
        socket.close();
        resolve('connected');
      });
      socket.on('connect_error', (err) => {
        socket.close();
        resolve(`refused: ${err.message}`);
      });
    });

  it('refuses a handshake without a valid token and accepts one with', async () => {
    expect(await tryConnect()).toBe('refused: unauthorized');
    expect(await tryConnect({ token: 'wrong' })).toBe('refused: unauthorized');
    expect(await tryConnect({ token: CI })).toBe('connected');
    expect(await tryConnect({ token: await issuer.token({ sub: 'u1' }) })).toBe('connected');
  });

  it('disconnects a socket when its token expires, and refuses it after', async () => {
    const exp = Math.floor(Date.now() / 1000) + 3;
    const token = await issuer.token({ sub: 'short-lived' }, { exp });
    const socket = connect(base(), {
      transports: ['websocket'],
      reconnection: false,
      auth: { token },
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.on('connect', () => resolve());
        socket.on('connect_error', reject);
      });
      // Still connected just before, gone within a second after.
      const reason = await new Promise<string>((resolve) => {
        const t = setTimeout(() => resolve('still connected'), exp * 1000 - Date.now() + 2_000);
        socket.on('disconnect', (r) => {
          clearTimeout(t);
          resolve(r);
        });
      });
      expect(reason).toBe('io server disconnect');
      expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
      expect(await tryConnect({ token })).toBe('refused: unauthorized');
    } finally {
      socket.close();
    }
  });
});

describe('OIDC', () => {
  it('accepts a valid token as its preferred_username and refuses expired, foreign and forged ones', async () => {
    const good = await issuer.token({ sub: 'u-17', preferred_username: 'olga' });
    const r = await call('POST', '/api/processes/hello', good, { name: 'Olga' });
    expect(r.status).toBe(201);
    expect((await call('GET', `/api/processes/${r.body.id}`, good)).body.createdBy).toBe('olga');
    const subOnly = await issuer.token({ sub: 'u-18' });
    const s = await call('POST', '/api/processes/hello', subOnly, { name: 'Sub' });
    expect((await call('GET', `/api/processes/${s.body.id}`, subOnly)).body.createdBy).toBe('u-18');
    // Both at rest (suspended) before the counts: their first steps must not land in between.
    for (const id of [r.body.id, s.body.id])
      await waitFor(id, good, (p) => p.status === 'suspended');

    const before = await rows();
    const refused = [
      await issuer.token({ sub: 'x' }, { exp: Math.floor(Date.now() / 1000) - 60 }),
      await issuer.token({ sub: 'x' }, { aud: 'someone-else' }),
      await issuer.token({ sub: 'x' }, { iss: 'http://127.0.0.1:1' }),
      `${good.slice(0, -4)}AAAA`,
    ];
    for (const token of refused) {
      const res = await call('POST', '/api/processes/hello', token, { name: 'x' });
      expect(res.status).toBe(401);
    }
    expect(await rows()).toEqual(before);
    for (const id of [r.body.id, s.body.id]) await call('PUT', `/api/processes/${id}/abort`, good);
  });

  it('refuses a token without exp, or that lives longer than OIDC_MAX_TOKEN_LIFETIME_SECONDS', async () => {
    const forever = await issuer.token({ sub: 'forever' }, { exp: null });
    expect((await call('GET', '/api/processes', forever)).status).toBe(401);
    const tooLong = await issuer.token({ sub: 'too-long' }, { exp: '2h' });
    expect((await call('GET', '/api/processes', tooLong)).status).toBe(401);
    const withinLimit = await issuer.token({ sub: 'within' }, { exp: '55m' });
    expect((await call('GET', '/api/processes', withinLimit)).status).toBe(200);
    const tryConnect = (token: string) =>
      new Promise<string>((resolve) => {
        const socket = connect(base(), {
          transports: ['websocket'],
          reconnection: false,
          auth: { token },
        });
        socket.on('connect', () => (socket.close(), resolve('connected')));
        socket.on('connect_error', (err) => (socket.close(), resolve(`refused: ${err.message}`)));
      });
    expect(await tryConnect(forever)).toBe('refused: unauthorized');
    expect(await tryConnect(withinLimit)).toBe('connected');
  });

  it('follows a key rotation: a token signed by a new key is accepted once the JWKS has it', async () => {
    await issuer.addKey('k2');
    const fetches = issuer.jwksFetches();
    // jose fetches the keys again for an unknown key id, at most once per cooldown (5 s).
    await new Promise((r) => setTimeout(r, 5_500));
    const rotated = await issuer.token({ sub: 'rotated' }, { kid: 'k2' });
    expect((await call('GET', '/api/processes', rotated)).status).toBe(200);
    expect(issuer.jwksFetches()).toBeGreaterThan(fetches);
  });
});

describe('authorization hooks', () => {
  const oidc = (name: string, roles: string[] = []) =>
    issuer.token({ sub: name, preferred_username: name, roles });

  it('authorize refuses a start with 403 forbidden and its reason, writing nothing', async () => {
    const before = await rows();
    const r = await call('POST', '/api/processes/guarded_change', await oidc('mallory'), {});
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: 'forbidden', message: 'mallory may not start' });
    expect(await rows()).toEqual(before);
  });

  it('authorizeRetry lets only operators retry; assignee and authorizeResume guard the approval', async () => {
    const starter = await oidc('sam', ['approver']);
    const id = (await call('POST', '/api/processes/guarded_change', starter, { failFirst: true }))
      .body.id;
    await waitFor(id, starter, (p) => p.status === 'failed');
    const noRetry = await call('PUT', `/api/processes/${id}/resume`, starter);
    expect(noRetry.status).toBe(403);
    expect(noRetry.body.error.message).toBe('only operators retry');
    expect((await call('GET', `/api/processes/${id}`, starter)).body.status).toBe('failed');
    expect(
      (await call('PUT', `/api/processes/${id}/resume`, await oidc('ops', ['operator']))).status,
    ).toBe(204);
    const waiting = await waitFor(id, starter, (p) => p.status === 'suspended');
    // The assignee is recorded on the process while it waits at the step, and filtered on.
    expect(waiting.assignee).toBe('approver');
    const listed = await call('GET', '/api/processes?assignee=approver&limit=1000', starter);
    expect(listed.body.items.map((p: { id: string }) => p.id)).toContain(id);
    const others = await call('GET', '/api/processes?assignee=noc&limit=1000', starter);
    expect(others.body.items.map((p: { id: string }) => p.id)).not.toContain(id);

    // Not an approver: the step's assignee role is missing.
    const noRole = await call('PUT', `/api/processes/${id}/resume`, await oidc('pat', ['viewer']), {
      approved: true,
    });
    expect(noRole.status).toBe(403);
    expect(noRole.body.error.message).toMatch(/assigned to approver/);
    // An approver, but the one who started it: the step's own hook refuses.
    const self = await call('PUT', `/api/processes/${id}/resume`, starter, { approved: true });
    expect(self.status).toBe(403);
    expect(self.body.error.message).toBe('the one who started a change may not approve it');
    // A static token carries no roles: refused, as the step does not allow tokens without roles.
    const roleless = await call('PUT', `/api/processes/${id}/resume`, CI, { approved: true });
    expect(roleless.status).toBe(403);
    expect(roleless.body.error.message).toMatch(/assigned to approver; ci does not have that role/);
    const approver = await oidc('ana', ['approver']);
    expect(
      (await call('PUT', `/api/processes/${id}/resume`, approver, { approved: true })).status,
    ).toBe(204);
    const done = await waitFor(id, CI, (p) => p.status === 'completed');
    expect(done.assignee).toBeNull();
    expect((await stepUsers(id)).slice(-1)).toEqual(['Approve:success:ana']);
  });

  it('an input step may let tokens without roles answer it (allowTokensWithoutRoles)', async () => {
    const id = (await call('POST', '/api/processes/open_approval', CI, {})).body.id;
    const waiting = await waitFor(id, CI, (p) => p.status === 'suspended');
    expect(waiting.assignee).toBe('noc');
    // A token with roles, but not this one: refused.
    const viewer = await call('PUT', `/api/processes/${id}/resume`, await oidc('pat', ['viewer']), {
      done: true,
    });
    expect(viewer.status).toBe(403);
    expect((await call('PUT', `/api/processes/${id}/resume`, CI, { done: true })).status).toBe(204);
    await waitFor(id, CI, (p) => p.status === 'completed');
  });

  it('authorize covers abort too', async () => {
    const id = (await call('POST', '/api/processes/guarded_change', CI, {})).body.id;
    await waitFor(id, CI, (p) => p.status === 'suspended');
    const r = await call('PUT', `/api/processes/${id}/abort`, await oidc('mallory'));
    expect(r.status).toBe(403);
    expect(r.body.error.message).toBe('mallory may not abort');
    expect((await call('PUT', `/api/processes/${id}/abort`, CI)).status).toBe(204);
  });
});

describe('rate limit', () => {
  it('answers 429 after repeated failures from one address', async () => {
    const answers: number[] = [];
    for (let i = 0; i < 25; i++)
      answers.push((await call('GET', '/api/processes', `bad-${i}`)).status);
    expect(answers.slice(0, 5).every((s) => s === 401)).toBe(true);
    expect(answers.at(-1)).toBe(429);
    const r = await call('GET', '/api/processes', 'bad-again');
    expect(r.body.error.code).toBe('too_many_requests');
  });

  it("never refuses a valid token for others' failures from its address", async () => {
    // The address is past its limit (the test before, or these).
    for (let i = 0; i < 21; i++) await call('GET', '/api/processes', `bad-token-${i}`);
    expect((await call('GET', '/api/processes', 'bad-token-x')).status).toBe(429);
    expect((await call('GET', '/api/processes', ALICE)).status).toBe(200);
    expect((await call('GET', '/api/processes', await issuer.token({ sub: 'ok' }))).status).toBe(
      200,
    );
  });

  describe('behind a reverse proxy', () => {
    /** A reverse proxy as nginx's `proxy_add_x_forwarded_for` makes one: the client's address added. */
    async function startProxy(target: number) {
      const server = http.createServer((req, res) => {
        const forwarded = [req.headers['x-forwarded-for'], req.socket.remoteAddress]
          .filter(Boolean)
          .join(', ');
        const up = http.request(
          {
            host: '127.0.0.1',
            port: target,
            method: req.method,
            path: req.url,
            headers: { ...req.headers, 'x-forwarded-for': forwarded },
          },
          (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        up.on('error', () => res.writeHead(502).end());
        req.pipe(up);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      return {
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      };
    }
    /** A GET through the proxy from the client address `from` (a loopback address of its own). */
    const viaProxy = (port: number, from: string, token: string, headers = {}) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            localAddress: from,
            path: '/api/processes?limit=1',
            headers: { authorization: `Bearer ${token}`, ...headers },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end();
      });

    it('counts the clients behind it apart with TRUST_PROXY, per address and per credential', async () => {
      const env = {
        HOST: '0.0.0.0',
        API_TOKENS: `alice=${ALICE},ci=${CI}`,
        WORKFLOWS_DIR: fixtures('workflows-auth'),
      };
      const trusting = await h.startApi({ ...env, TRUST_PROXY: '1' });
      const proxy = await startProxy(trusting.port);
      try {
        // One client hammers with a wrong token: its own failures refuse it.
        const mallory: number[] = [];
        for (let i = 0; i < 25; i++)
          mallory.push(await viaProxy(proxy.port, '127.0.0.2', `wrong-${i}-0123456789`));
        expect(mallory.slice(0, 20).every((s) => s === 401)).toBe(true);
        expect(mallory.at(-1)).toBe(429);
        // Other clients of the proxy are not: a wrong token is a 401, a valid one passes, and
        // so does a valid one from the address that failed.
        expect(await viaProxy(proxy.port, '127.0.0.3', 'typo-0123456789abc')).toBe(401);
        expect(await viaProxy(proxy.port, '127.0.0.3', CI)).toBe(200);
        expect(await viaProxy(proxy.port, '127.0.0.2', ALICE)).toBe(200);
        // A client cannot make itself someone else: what it says it forwards comes before the
        // proxy's entry, which is the one trusted.
        expect(
          await viaProxy(proxy.port, '127.0.0.2', 'wrong-again-0123456789', {
            'x-forwarded-for': '10.9.8.7',
          }),
        ).toBe(429);
        // One credential tried from many addresses is counted too.
        const spread: number[] = [];
        for (let i = 0; i < 22; i++)
          spread.push(await viaProxy(proxy.port, `127.0.1.${i + 1}`, 'stolen-0123456789abcdef'));
        expect(spread.slice(0, 20).every((s) => s === 401)).toBe(true);
        expect(spread.at(-1)).toBe(429);
        expect(await viaProxy(proxy.port, '127.0.2.1', 'other-0123456789abcdef')).toBe(401);
      } finally {
        await proxy.close();
        await trusting.close();
      }
    });

    it('without TRUST_PROXY, everyone behind it shares its address (but valid tokens pass)', async () => {
      const plain = await h.startApi({
        HOST: '0.0.0.0',
        API_TOKENS: `alice=${ALICE},ci=${CI}`,
        WORKFLOWS_DIR: fixtures('workflows-auth'),
      });
      const proxy = await startProxy(plain.port);
      try {
        for (let i = 0; i < 21; i++)
          await viaProxy(proxy.port, '127.0.0.2', `wrong-${i}-0123456789`);
        expect(await viaProxy(proxy.port, '127.0.0.3', 'typo-0123456789abc')).toBe(429);
        expect(await viaProxy(proxy.port, '127.0.0.3', CI)).toBe(200);
      } finally {
        await proxy.close();
        await plain.close();
      }
    });
  });
});
