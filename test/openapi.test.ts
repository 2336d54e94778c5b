// The OpenAPI document against the real API: every Express route is in it and it names no other,
// it validates as OpenAPI 3.1, it carries each workflow's start form, its security matches what
// the authentication middleware does, real responses match the response schemas, real errors are
// the ones it lists, and the docs page is served from node_modules and renders under the CSP.
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { chromium } from 'playwright-core';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { z } from 'zod';
import { ERROR_CODES } from '../src/api/errors.ts';
import {
  engineStatusSchema,
  processListSchema,
  processSchema,
  scheduleSchema,
  statusCountsSchema,
  workerStatusSchema,
  workflowSchema,
} from '../src/api/responses.ts';
import type { Orchestrator } from '../src/server.ts';
import { client } from './support/api.ts';
import { useHarness } from './support/harness.ts';

const TOKEN = 'openapi-test-token-0123456789';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
/** Routes that are not the API's: the live view page's module (its files are express.static). */
const NOT_API = ['GET /statuses.js'];
/** The one route the document has once per registered workflow, with the workflow in the path. */
const START = 'POST /api/processes/{workflow}';

// The APIs start under a spy: the harness gives the database and closes them at the end.
const h = useHarness();
let api: Orchestrator;
let secured: Orchestrator;
let app: unknown;
let spec: any;
let http_: ReturnType<typeof client>;

beforeAll(async () => {
  // The app as server.ts composes it: the request listener of the HTTP server it creates.
  const createServer = vi.spyOn(http, 'createServer');
  api = await h.startApi();
  app = createServer.mock.calls.map((c) => c[0]).find((a) => typeof a === 'function');
  createServer.mockRestore();
  secured = await h.startApi({ API_TOKENS: `ci=${TOKEN}` });
  http_ = client(api.url);
  const r = await fetch(`${api.url}/api/openapi.json`);
  expect(r.status).toBe(200);
  spec = await r.json();
});

// ---- The Express router ----

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: string | string[];
}

/** Every route of the app, `METHOD /path` with OpenAPI's `{param}`, routers mounted included. */
function routesOf(stack: Layer[], prefix = ''): string[] {
  const out: string[] = [];
  for (const layer of stack) {
    if (layer.route) {
      const paths = ([] as string[]).concat(layer.route.path);
      for (const [method, on] of Object.entries(layer.route.methods))
        if (on && method !== '_all')
          for (const p of paths)
            out.push(`${method.toUpperCase()} ${(prefix + p).replace(/:(\w+)/g, '{$1}')}`);
    } else if (layer.handle?.stack) {
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      out.push(...routesOf(layer.handle.stack, prefix + mount));
    }
  }
  return out;
}

function specOperations(doc: any): string[] {
  return Object.entries(doc.paths).flatMap(([p, item]: [string, any]) =>
    METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${p}`),
  );
}

/** The operation a request reaches: a concrete path before a templated one. */
function operationFor(method: string, url: string): any {
  const p = url.split('?')[0]!;
  const paths = Object.keys(spec.paths).sort(
    (a, b) => Number(a.includes('{')) - Number(b.includes('{')),
  );
  for (const template of paths) {
    const re = new RegExp(`^${template.replace(/\{\w+\}/g, '[^/]+')}$`);
    const op = spec.paths[template][method.toLowerCase()];
    if (re.test(p) && op) return op;
  }
  throw new Error(`no operation in the document for ${method} ${p}`);
}

/** The error codes the document lists for `op`'s `status` ($ref of the shared responses followed). */
function documentedCodes(op: any, status: number): string[] {
  let r = op.responses[String(status)];
  if (!r) return [];
  if (r.$ref) r = spec.components.responses[r.$ref.split('/').pop()];
  return r.content['application/json'].schema.properties.error.properties.code.enum;
}

describe('the document and the router', () => {
  it('has every route of the app, and no other', async () => {
    const stack = (app as { router: { stack: Layer[] } }).router.stack;
    const routes = [...new Set(routesOf(stack))];
    expect(routes).toContain(START);
    expect(routes).toContain('GET /metrics');
    expect(
      routes.filter((r) => !r.split(' ')[1]!.startsWith('/api/') && r !== 'GET /metrics'),
    ).toEqual(NOT_API);
    const workflows = (await http_.get('/api/workflows')).body as { name: string }[];
    expect(workflows.length).toBeGreaterThan(0);
    const expected = routes
      .filter((r) => !NOT_API.includes(r))
      .flatMap((r) => (r === START ? workflows.map((w) => `POST /api/processes/${w.name}`) : [r]))
      .sort();
    const documented = specOperations(spec);
    expect(
      expected.filter((r) => !documented.includes(r)),
      'routes missing from the document',
    ).toEqual([]);
    expect(
      documented.filter((o) => !expected.includes(o)),
      'operations of no route',
    ).toEqual([]);
  });

  it('validates as OpenAPI 3.1 and every $ref resolves', async () => {
    const validator = new Validator();
    const res = await validator.validate(structuredClone(spec));
    expect(res.errors ?? []).toEqual([]);
    expect(res.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    expect(() => validator.resolveRefs()).not.toThrow();
    const refs = JSON.stringify(spec).match(/"\$ref":"[^"]+"/g) ?? [];
    for (const ref of new Set(refs)) {
      const [, kind, name] = /#\/components\/(\w+)\/([^"]+)"/.exec(ref) ?? [];
      expect(spec.components[kind!]?.[name!], ref).toBeDefined();
    }
  });

  it('describes every operation: id, summary, tag, parameters, responses and error codes', () => {
    const ids = new Set<string>();
    for (const [p, item] of Object.entries<any>(spec.paths))
      for (const m of METHODS) {
        const op = item[m];
        if (!op) continue;
        const where = `${m.toUpperCase()} ${p}`;
        expect(op.operationId, where).toBeTruthy();
        expect(ids.has(op.operationId), `${where}: operationId repeated`).toBe(false);
        ids.add(op.operationId);
        expect(op.summary, where).toBeTruthy();
        expect(op.tags?.length, where).toBe(1);
        expect(spec.tags.map((t: any) => t.name)).toContain(op.tags[0]);
        // Path parameters: exactly the template's, each required with a schema and words.
        const inPath = [...p.matchAll(/\{(\w+)\}/g)].map((x) => x[1]);
        const params = op.parameters ?? [];
        expect(
          params.filter((x: any) => x.in === 'path').map((x: any) => x.name),
          where,
        ).toEqual(inPath);
        for (const x of params) {
          expect(x.schema, `${where} ${x.name}`).toBeDefined();
          expect(x.description, `${where} ${x.name}`).toBeTruthy();
        }
        const statuses = Object.keys(op.responses).map(Number);
        expect(
          statuses.some((s) => s >= 200 && s < 300),
          where,
        ).toBe(true);
        expect(statuses, where).toContain(500);
        for (const s of statuses.filter((s) => s >= 400)) {
          const codes = documentedCodes(op, s);
          expect(codes.length, `${where} ${s}`).toBeGreaterThan(0);
          for (const c of codes) expect(Object.keys(ERROR_CODES), `${where} ${s}`).toContain(c);
        }
      }
    // Each code of the catalogue is one some response can carry.
    const used = new Set(
      Object.values<any>(spec.paths).flatMap((item) =>
        METHODS.flatMap((m) =>
          item[m]
            ? Object.keys(item[m].responses)
                .filter((s) => Number(s) >= 400)
                .flatMap((s) => documentedCodes(item[m], Number(s)))
            : [],
        ),
      ),
    );
    expect(Object.keys(ERROR_CODES).filter((c) => !used.has(c))).toEqual([]);
    const list = spec.paths['/api/processes'].get.parameters.map((x: any) => x.name);
    expect(list).toEqual([
      'status',
      'workflow',
      'isTask',
      'createdBy',
      'assignee',
      'startedAfter',
      'startedBefore',
      'topLevel',
      'search',
      'limit',
      'offset',
      'sort',
    ]);
  });

  it("carries each workflow's start form as its start operation's body", async () => {
    const workflows = (await http_.get('/api/workflows')).body as any[];
    for (const w of workflows) {
      const form = { ...w.inputSchema };
      delete form.$schema;
      expect(spec.components.schemas[`StartForm.${w.name}`]).toEqual(form);
      const body =
        spec.paths[`/api/processes/${w.name}`].post.requestBody.content['application/json'].schema;
      expect(JSON.stringify(body)).toContain(`"#/components/schemas/StartForm.${w.name}"`);
    }
    expect(spec.components.schemas['StartForm.hello']).toMatchObject({
      type: 'object',
      required: ['name'],
      properties: { name: { type: 'string', minLength: 1 } },
    });
  });

  it('names the bearer token exactly where the API asks for one', async () => {
    expect(spec.components.securitySchemes.bearerAuth).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
    expect(spec.security).toEqual([{ bearerAuth: [] }]);
    const sample: Record<string, string> = {
      id: '00000000-0000-4000-8000-000000000000',
      token: 'x'.repeat(43),
      name: 'hello',
      asset: 'start.js',
    };
    const withToken = await fetch(`${secured.url}/api/workflows`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(withToken.status).toBe(200);
    await withToken.arrayBuffer();
    for (const op of specOperations(spec).filter((o) => o.includes(' /api/'))) {
      const [method, template] = op.split(' ') as [string, string];
      const url = template.replace(/\{(\w+)\}/g, (_m, k: string) => sample[k]!);
      const res = await fetch(secured.url + url, { method, redirect: 'manual' });
      await res.arrayBuffer(); // read: a body left unread keeps its socket open
      const open =
        (spec.paths[template][method.toLowerCase()].security ?? spec.security).length === 0;
      // Refused: 401, or 429 once the failures of this address pass the limit (20 a minute).
      const refused = res.status === 401 || res.status === 429;
      expect(refused, `${op} answered ${res.status}`).toBe(!open);
    }
    // Open without a token: the document and the docs page.
    for (const path of ['/api/openapi.json', '/api/docs']) {
      const r = await fetch(secured.url + path);
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    }
  });
});

describe('real responses and errors', () => {
  const parsesAs = (schema: z.ZodType, body: unknown) => {
    // Parsing drops what the schema does not name: equal means no field is missing or extra.
    expect(
      schema.parse(body),
      'the response has a field its schema in src/api/responses.ts does not name, or lacks one it names',
    ).toEqual(body);
  };

  it('answers with bodies of the documented schemas', async () => {
    const id = await http_.start('hello', { name: 'Docs' });
    const suspended = await http_.waitForStatus(id, 'suspended');
    parsesAs(processSchema, suspended);
    expect(suspended.form).toBeDefined();
    parsesAs(processListSchema, (await http_.get('/api/processes?limit=5')).body);
    parsesAs(statusCountsSchema, (await http_.get('/api/processes/status-counts')).body);
    for (const w of (await http_.get('/api/workflows')).body) parsesAs(workflowSchema, w);
    parsesAs(engineStatusSchema, (await http_.get('/api/settings/status')).body);
    parsesAs(workerStatusSchema, (await http_.get('/api/settings/worker-status')).body);
    const created = await http_.post('/api/schedules', {
      name: 'openapi-doc',
      workflow: 'noop',
      cron: '0 3 * * *',
    });
    expect(created.status).toBe(201);
    parsesAs(scheduleSchema, created.body);
    for (const s of (await http_.get('/api/schedules')).body) parsesAs(scheduleSchema, s);
    expect((await http_.call('DELETE', '/api/schedules/openapi-doc')).status).toBe(204);
    const done = await http_.put(`/api/processes/${id}/resume`, { confirmed: true });
    expect(done.status).toBe(204);
    parsesAs(processSchema, await http_.waitForStatus(id, 'completed'));
  });

  it('answers errors the document lists for the operation', async () => {
    const uuid = '00000000-0000-4000-8000-000000000000';
    const completed = await http_.start('noop', {});
    await http_.waitForStatus(completed, 'completed');
    const cases: [method: string, url: string, body?: unknown][] = [
      ['GET', '/api/processes/not-a-uuid'],
      ['GET', `/api/processes/${uuid}`],
      ['GET', '/api/processes?limit=0'],
      ['GET', '/api/processes?nope=1'],
      ['GET', '/api/workflows/nope'],
      ['POST', '/api/processes/hello', {}],
      ['POST', '/api/processes/hello', '{"name":'],
      ['PATCH', `/api/processes/${uuid}`, { note: 'x' }],
      ['PATCH', `/api/processes/${completed}`, { note: 7 }],
      ['PUT', `/api/processes/${uuid}/abort`],
      ['PUT', `/api/processes/${completed}/abort`],
      ['PUT', `/api/processes/${completed}/resume`],
      ['DELETE', `/api/processes/${completed}`],
      ['POST', `/api/processes/${completed}/callback/${'x'.repeat(43)}`, {}],
      ['POST', `/api/processes/${completed}/callback/short/progress`, {}],
      ['PUT', '/api/settings/status', { globalLock: 'yes' }],
      ['POST', '/api/schedules', { name: 'x', workflow: 'noop', cron: 'not a cron' }],
      ['POST', '/api/schedules', { name: 'x', workflow: 'nope', cron: '* * * * *' }],
      ['DELETE', '/api/schedules/nope'],
      ['GET', '/api/docs/nope.js'],
    ];
    for (const [method, url, body] of cases) {
      const r = await http_.call(method, url, body);
      const where = `${method} ${url} answered ${r.status} ${JSON.stringify(r.body)}`;
      expect(r.status, where).toBeGreaterThanOrEqual(400);
      expect(documentedCodes(operationFor(method, url), r.status), where).toContain(
        r.body.error.code,
      );
    }
  });
});

describe('the docs page', () => {
  it('is served with its assets from node_modules, without inline scripts or outside URLs', async () => {
    const page = await fetch(`${api.url}/api/docs`);
    expect(page.status).toBe(200);
    // helmet's Content-Security-Policy, when the app sets one, applies to the page as to the rest.
    const csp = page.headers.get('content-security-policy');
    if (csp) expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, inline] of scripts) {
      expect(attrs).toMatch(/src="/);
      expect(inline!.trim()).toBe('');
    }
    expect(html).not.toMatch(/https?:\/\//);
    const dist = path.dirname(
      createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'),
    );
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(assets).toContain('docs/swagger-ui-bundle.js');
    for (const asset of assets) {
      const url = new URL(asset, `${api.url}/api/docs`);
      expect(url.origin).toBe(api.url);
      const r = await fetch(url);
      expect(r.status, asset).toBe(200);
      const bytes = Buffer.from(await r.arrayBuffer());
      const file = path.join(dist, path.basename(asset));
      if (fs.existsSync(file)) expect(bytes.equals(fs.readFileSync(file)), asset).toBe(true);
      else expect(bytes.toString()).toContain("'openapi.json'"); // the page's own start script
    }
    const slash = await fetch(`${api.url}/api/docs/`, { redirect: 'manual' });
    expect(slash.status).toBe(301);
    await slash.arrayBuffer();
    expect(new URL(slash.headers.get('location')!, `${api.url}/api/docs/`).pathname).toBe(
      '/api/docs',
    );
  });

  it('renders every operation in a browser, scripts from its own origin only', async () => {
    if (!fs.existsSync(CHROMIUM))
      throw new Error(
        `The docs page check needs Debian's chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
      );
    const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchestrator-chromium-'));
    const browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      const outside: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('request', (r) => !r.url().startsWith(api.url) && outside.push(r.url()));
      await page.goto(`${api.url}/api/docs`);
      await page.locator('.opblock').first().waitFor({ timeout: 20_000 });
      expect(await page.locator('.opblock').count()).toBe(specOperations(spec).length);
      expect(await page.locator('.info .title').innerText()).toContain(spec.info.title);
      expect(errors).toEqual([]);
      expect(outside).toEqual([]);
    } finally {
      await browser.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    }
  });
});
