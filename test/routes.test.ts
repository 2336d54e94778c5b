// The route list (src/api/routes.ts) is the one declaration of the API's routes: the router, the
// authentication, the body limits and the OpenAPI document are derived from it. Here, without a
// database: the app serves exactly the listed routes and the document names exactly those, the
// open routes and the routes with the larger body limit are the ones the API has always had, and
// the authentication and the body limits apply to the request paths of those routes.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/api/app.ts';
import { INPUT_BODY_LIMIT, SMALL_BODY_LIMIT } from '../src/api/hardening.ts';
import { buildOpenApiDocument } from '../src/api/openapi.ts';
import type { ApiContext, Route } from '../src/api/route.ts';
import { ROUTES } from '../src/api/routes.ts';
import { silentLogger } from '../src/config/logger.ts';
import { createEngineMetrics } from '../src/engine/metrics.ts';
import { loadRegistry, type Registry } from '../src/engine/registry.ts';
import { root } from './support/paths.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
const op = (r: Route) => `${r.method.toUpperCase()} ${r.path}`;
/** A request path of a route: each parameter a sample value. */
const sample = (p: string) =>
  p.replace(/:(\w+)/g, (_m, k: string) => (k === 'id' ? 'x' : `${k}-1`));

let registry: Registry;
/** Nothing the routes reach works: only the checks before them answer as they would. */
let context: ApiContext;

beforeAll(async () => {
  registry = await loadRegistry(path.join(root, 'workflows'));
  const unavailable = () => {
    throw new Error('not in this test');
  };
  context = {
    engine: new Proxy({}, { get: (_t, k) => (k === 'registry' ? registry : unavailable) }),
    pool: new Proxy({}, { get: () => unavailable }),
    scheduler: new Proxy({}, { get: () => unavailable }),
    executor: 'threadpool',
    queues: [],
    metrics: createEngineMetrics(),
    liveClients: () => 0,
  } as unknown as ApiContext;
});

/** Serves `createApp` with `auth` for the length of `fn`. */
async function serving(
  options: { required: boolean },
  fn: (url: string) => Promise<void>,
): Promise<void> {
  const app = createApp({
    ...context,
    logger: silentLogger,
    auth: { required: options.required, verify: async () => undefined },
  });
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** `METHOD /path` of each route of a router stack, the routers mounted in it included. */
const served = (stack: Layer[]): string[] =>
  stack.flatMap((l) =>
    l.route
      ? Object.keys(l.route.methods)
          .filter((m) => l.route!.methods[m] && m !== '_all')
          .map((m) => `${m.toUpperCase()} ${l.route!.path}`)
      : served(l.handle?.stack ?? []),
  );

describe('the route list', () => {
  it('is what the app serves and what the document names, method and path alike', async () => {
    const app = createApp({ ...context, logger: silentLogger });
    const routes = served((app as unknown as { router: { stack: Layer[] } }).router.stack);
    expect(routes).toEqual(ROUTES.map(op));
    expect(new Set(routes).size, 'a method and path declared twice').toBe(routes.length);

    const doc = await buildOpenApiDocument(ROUTES, registry);
    const documented = Object.entries(doc.paths ?? {}).flatMap(([p, item]) =>
      METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${p}`),
    );
    const names = registry.list().map((w) => w.name);
    expect(names.length).toBeGreaterThan(0);
    const expected = ROUTES.flatMap((r) =>
      'perWorkflow' in r.doc
        ? names.map((n) => `${r.method.toUpperCase()} ${r.path.replace(/:\w+/, n)}`)
        : [`${r.method.toUpperCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`],
    );
    expect(documented.sort()).toEqual(expected.sort());
  });

  it('opens only the routes that were always open, and gives inputs the larger body limit', () => {
    expect(ROUTES.filter((r) => r.auth === 'open').map(op)).toEqual([
      'GET /api/health',
      'POST /api/processes/:id/callback/:token',
      'POST /api/processes/:id/callback/:token/progress',
      'GET /api/openapi.json',
      'GET /api/docs',
      'GET /api/docs/:asset',
    ]);
    expect(ROUTES.filter((r) => r.auth === 'metricsToken').map(op)).toEqual(['GET /metrics']);
    // The authentication and the body checks are mounted on /api.
    for (const r of ROUTES.filter((r) => (r.auth ?? 'bearer') === 'bearer'))
      expect(r.path, op(r)).toMatch(/^\/api\//);
    expect(
      ROUTES.filter((r) => r.bodyLimit === INPUT_BODY_LIMIT)
        .map(op)
        .sort(),
    ).toEqual([
      'POST /api/processes/:id/callback/:token',
      'POST /api/processes/:id/callback/:token/progress',
      'POST /api/processes/:workflow',
      'PUT /api/processes/:id/resume',
    ]);
  });

  it('asks for a bearer token on the paths of the bearer routes only', async () => {
    await serving({ required: true }, async (url) => {
      for (const r of ROUTES.filter((r) => r.path.startsWith('/api/'))) {
        const res = await fetch(url + sample(r.path), {
          method: r.method.toUpperCase(),
          redirect: 'manual',
        });
        await res.arrayBuffer();
        // Refused: 401, or 429 once the failures of this address pass the limit (20 a minute).
        const refused = res.status === 401 || res.status === 429;
        expect(refused, `${op(r)} answered ${res.status}`).toBe((r.auth ?? 'bearer') === 'bearer');
      }
    });
  });

  it("answers OPTIONS as it always has: Allow on an area router's paths, 404 on the app's own", async () => {
    await serving({ required: false }, async (url) => {
      const area = await fetch(`${url}/api/settings/status`, { method: 'OPTIONS' });
      await area.arrayBuffer();
      expect(area.status).toBe(200);
      expect(area.headers.get('allow')).toBe('GET, HEAD, PUT');
      const own = await fetch(`${url}/api/processes/x`, { method: 'OPTIONS' });
      expect(own.status).toBe(404);
      expect(((await own.json()) as { error: { code: string } }).error.code).toBe(
        'route_not_found',
      );
    });
  });

  it('takes a body over the small limit on the routes with the larger one only', async () => {
    const body = `{${' '.repeat(SMALL_BODY_LIMIT + 1)}`;
    await serving({ required: false }, async (url) => {
      for (const r of ROUTES.filter((r) => r.path.startsWith('/api/') && r.method !== 'get')) {
        const res = await fetch(url + sample(r.path), {
          method: r.method.toUpperCase(),
          headers: { 'content-type': 'application/json' },
          body,
        });
        // Read in full and found not to be JSON, or refused for its size before.
        const code = ((await res.json()) as { error: { code: string } }).error.code;
        expect(code, op(r)).toBe(
          r.bodyLimit === INPUT_BODY_LIMIT ? 'invalid_json' : 'payload_too_large',
        );
      }
    });
  });
});
