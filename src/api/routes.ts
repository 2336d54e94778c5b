// Every route of the API, in one list: the router (app.ts), the authentication (auth.ts), the body
// limits (hardening.ts) and the OpenAPI document (openapi.ts) are derived from it. The order is the
// router's (a concrete path before a parameter that would match it: status-counts before :id) and
// the document's.
import { z } from 'zod';
import { isStatementTimeout, isTooManyClients, ping, type Pool } from '../db/pool.ts';
import { callbackRoutes } from './callbacks.ts';
import { docsRoutes } from './docs.ts';
import { ERROR_CODES, errorBody } from './errors.ts';
import { metricsRoute } from './metrics.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { stepStateRoute } from './process-states.ts';
import { processRoutes } from './processes.ts';
import { errorSchema, healthSchema } from './responses.ts';
import { json, type Route } from './route.ts';
import { scheduleRoutes } from './schedules.ts';
import { settingsRoutes } from './settings.ts';
import { workerStatusRoute } from './worker-status.ts';
import { getWorkflow, listWorkflows, startProcess } from './workflows.ts';

/**
 * Checks the database with a short timeout, so a dead database answers 503 quickly: undefined
 * when it answers, else the code to answer (a database refusing new connections is busy).
 */
async function databaseProblem(
  pool: Pool,
  timeoutMs = 2_000,
): Promise<'database_unavailable' | 'database_busy' | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'database_unavailable'>(
    (r) => (timer = setTimeout(() => r('database_unavailable'), timeoutMs)),
  );
  try {
    return await Promise.race([
      ping(pool).then(
        () => undefined,
        (err: unknown) =>
          isTooManyClients(err) || isStatementTimeout(err)
            ? ('database_busy' as const)
            : ('database_unavailable' as const),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const HEALTH_MESSAGES = {
  database_unavailable: 'The database is unreachable',
  database_busy: 'The database refuses new connections (too many clients)',
  database_full: 'The database refuses writes: its disk is full',
} as const;

const HEALTH_CODES = ['database_unavailable', 'database_busy', 'database_full'] as const;

const health: Route = {
  method: 'get',
  path: '/api/health',
  auth: 'open',
  doc: {
    tag: 'Health',
    operationId: 'getHealth',
    summary: 'Health check',
    description:
      'Answers 503 when the database is unreachable, refuses new connections, or refused a write for a full disk since the last write that went through.',
    database: false,
    responses: {
      200: json(healthSchema, 'The API and its database are up'),
      503: json(
        errorSchema([...HEALTH_CODES]).extend({ status: z.literal('unavailable') }),
        `Service unavailable:\n\n${HEALTH_CODES.map((c) => `- \`${c}\`: ${ERROR_CODES[c]}`).join('\n')}`,
      ),
    },
  },
  handler:
    ({ pool, healthPool, databaseWatch }) =>
    async (_req, res) => {
      const problem = (await databaseProblem(healthPool ?? pool)) ?? databaseWatch?.condition();
      if (!problem) res.json({ status: 'ok' });
      else
        res
          .status(503)
          .set('Retry-After', '1')
          .json({ status: 'unavailable', ...errorBody(problem, HEALTH_MESSAGES[problem]) });
    },
};

/** `GET /api/openapi.json`, built at the first request (the registry is fixed once the API runs). */
const openapi: Route = {
  method: 'get',
  path: '/api/openapi.json',
  auth: 'open',
  doc: {
    tag: 'Docs',
    operationId: 'getOpenApi',
    summary: 'This document (OpenAPI 3.1)',
    database: false,
    responses: {
      200: {
        description: 'The OpenAPI document',
        content: { 'application/json': { schema: { type: 'object' } } },
      },
    },
    errors: { 504: ['form_timeout'] },
  },
  handler: ({ engine }) => {
    // Kept once built; a start form that could not be built (a slow lookup) is tried again.
    let doc: Awaited<ReturnType<typeof buildOpenApiDocument>> | undefined;
    return async (_req, res) => {
      doc ??= await buildOpenApiDocument(ROUTES, engine.registry, engine.forms);
      res.json(doc);
    };
  },
};

/**
 * The routes by the router that serves them: the app itself, then one Express router per area.
 * That matters to OPTIONS alone: an area's router answers it on its paths with their methods
 * (`Allow`), while OPTIONS on a path of the app's own routes goes on to the 404.
 */
export const ROUTERS: readonly (readonly Route[])[] = [
  [
    health,
    listWorkflows,
    getWorkflow,
    startProcess,
    ...processRoutes,
    stepStateRoute,
    ...callbackRoutes,
  ],
  settingsRoutes,
  [workerStatusRoute],
  scheduleRoutes,
  [metricsRoute],
  [openapi],
  docsRoutes,
];

export const ROUTES: readonly Route[] = ROUTERS.flat();
