import express, { type Request } from 'express';
import type { Logger } from '../config/logger.ts';
import { ping, type Pool } from '../db/pool.ts';
import type { Engine } from '../engine/engine.ts';
import { describeWorkflow } from '../engine/registry.ts';
import { NotFoundError } from '../engine/errors.ts';
import cors from 'cors';
import helmet from 'helmet';
import { actorOf, authenticate, type Authenticator } from './auth.ts';
import { hardenedJson } from './hardening.ts';
import { errorBody, errorHandler, notFoundRoute } from './errors.ts';
import {
  callbackTokenSchema,
  listQuerySchema,
  noteSchema,
  parseOr,
  processIdSchema,
} from './schemas.ts';

export interface AppOptions {
  engine: Engine;
  pool: Pool;
  logger: Logger;
  /** Extra routers mounted before the 404 handler (settings, live view, …). */
  extend?: (app: express.Express) => void;
  /** Who may call `/api` (see auth.ts). Default: everyone, as `anonymous`. */
  auth?: Authenticator;
  /** Origins allowed to call the API from a browser (CORS). Default: none. */
  corsOrigins?: readonly string[];
}

function processId(req: Request): string {
  return parseOr(
    processIdSchema,
    req.params.id,
    'invalid_id',
    `Process id ${JSON.stringify(req.params.id)} is not a uuid`,
  );
}

/** A callback token's shape (43 base64url characters); anything else is a token of no callback. */
function callbackToken(req: Request): string {
  const token = String(req.params.token ?? '');
  if (!callbackTokenSchema.safeParse(token).success)
    throw new NotFoundError('callback_not_found', 'No callback with this token for this process');
  return token;
}

/** Checks the database with a short timeout, so a dead database answers 503 quickly. */
async function databaseReachable(pool: Pool, timeoutMs = 2_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
  try {
    return await Promise.race([
      ping(pool).then(
        () => true,
        () => false,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function createApp({
  engine,
  pool,
  logger,
  extend,
  auth,
  corsOrigins = [],
}: AppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Security headers (helmet: a maintained set with a same-origin Content-Security-Policy). The
  // live page loads only its own scripts and styles, and talks to its own origin.
  app.use(helmet());
  // CORS is off unless origins are configured.
  if (corsOrigins.length > 0)
    app.use('/api', cors({ origin: [...corsOrigins], maxAge: 600, exposedHeaders: ['Location'] }));
  // Before the body is read: a request without a valid credential costs nothing more.
  const guards = auth ? authenticate(auth) : [];
  if (guards.length > 0) app.use('/api', ...guards);
  app.use('/api', ...hardenedJson());

  app.get('/api/health', async (_req, res) => {
    if (await databaseReachable(pool)) res.json({ status: 'ok' });
    else
      res.status(503).json({
        status: 'unavailable',
        ...errorBody('database_unavailable', 'The database is unreachable'),
      });
  });

  app.get('/api/workflows', (_req, res) => {
    res.json(engine.registry.list().map(describeWorkflow));
  });
  app.get('/api/workflows/:name', (req, res) => {
    res.json(describeWorkflow(engine.registry.require(req.params.name)));
  });

  app.get('/api/processes', async (req, res) => {
    const q = parseOr(listQuerySchema, req.query, 'validation_error', 'Invalid query parameters');
    res.json(await engine.listProcesses(q));
  });
  app.get('/api/processes/status-counts', async (_req, res) => {
    res.json(await engine.statusCounts());
  });
  app.put('/api/processes/resume-all', async (req, res) => {
    res.json(await engine.resumeAllTasks(actorOf(req)));
  });
  app.post('/api/processes/:workflow', async (req, res) => {
    const { id } = await engine.startProcess(req.params.workflow, req.body, actorOf(req));
    res.status(201).location(`/api/processes/${id}`).json({ id });
  });
  app.get('/api/processes/:id', async (req, res) => {
    res.json(await engine.getProcess(processId(req)));
  });
  app.delete('/api/processes/:id', async (req, res) => {
    await engine.deleteTask(processId(req), actorOf(req));
    res.status(204).end();
  });
  app.patch('/api/processes/:id', async (req, res) => {
    const { note } = parseOr(
      noteSchema,
      req.body,
      'validation_error',
      'Expected {"note": string|null}',
    );
    res.json(await engine.setNote(processId(req), note));
  });
  app.put('/api/processes/:id/resume', async (req, res) => {
    await engine.resumeProcess(processId(req), req.body, actorOf(req));
    res.status(204).end();
  });
  // Callback URLs carry their own credential: the token (checked by the engine).
  app.post('/api/processes/:id/callback/:token', async (req, res) => {
    await engine.answerCallback(processId(req), callbackToken(req), req.body ?? null);
    res.status(204).end();
  });
  app.post('/api/processes/:id/callback/:token/progress', async (req, res) => {
    await engine.callbackProgress(processId(req), callbackToken(req), req.body ?? null);
    res.status(204).end();
  });
  app.put('/api/processes/:id/skip', async (req, res) => {
    await engine.skipStep(processId(req), actorOf(req));
    res.status(204).end();
  });
  app.put('/api/processes/:id/abort', async (req, res) => {
    await engine.abortProcess(processId(req), actorOf(req));
    res.status(204).end();
  });

  extend?.(app);
  app.use('/api', notFoundRoute);
  app.use(errorHandler(logger));
  return app;
}
