// One route of the HTTP API, declared once: its method and path, who may call it, the largest body
// it takes, its operation in the OpenAPI document and its handler. The router (app.ts), the
// authentication (auth.ts), the body limits (hardening.ts) and the document (openapi.ts) are all
// derived from the one list of them (routes.ts), so they cannot disagree about a route.
import type { RequestHandler } from 'express';
import type { z } from 'zod';
import type { ZodOpenApiResponsesObject } from 'zod-openapi';
import type { Pool } from '../db/pool.ts';
import type { Engine } from '../engine/engine.ts';
import type { EngineMetrics } from '../engine/metrics.ts';
import type { describeWorkflow } from '../engine/registry.ts';
import type { Scheduler } from '../executors/scheduler.ts';
import type { DatabaseWatch } from './database-watch.ts';
import type { Errors } from './errors.ts';

export type Method = 'get' | 'put' | 'post' | 'delete' | 'patch';

/** What the handlers are built with, once, when the app is. */
export interface ApiContext {
  engine: Engine;
  pool: Pool;
  /**
   * `GET /api/health`: a pool of its own (default `pool`), so that it answers while operations
   * waiting on a locked row hold every connection of the others.
   */
  healthPool?: Pool;
  /** What the operations met of the database refusing writes (default: nothing watched). */
  databaseWatch?: DatabaseWatch;
  scheduler: Scheduler;
  /** `GET /api/settings/worker-status`: the executor of this deployment. */
  executor: 'threadpool' | 'worker';
  /** The queues of this deployment, in display order. */
  queues: readonly string[];
  /** `GET /metrics`: what runs in this process. */
  metrics: EngineMetrics;
  /** Socket.IO clients connected to this instance. */
  liveClients: () => number;
  /** When set, only `Authorization: Bearer <token>` may scrape `/metrics`. */
  metricsToken?: string | undefined;
}

/**
 * Who may call a route: `bearer`, a valid bearer token when authentication is configured;
 * `open`, anyone (health, callback URLs whose token is the credential, the document and docs
 * page, which hold no data); `metricsToken`, METRICS_TOKEN when one is set.
 */
export type Access = 'bearer' | 'open' | 'metricsToken';

/** A route's operation in the OpenAPI document. */
export interface OperationDoc {
  tag: string;
  operationId: string;
  summary: string;
  description?: string;
  /**
   * Reads the database: 503 `database_unavailable` when it is unreachable, `database_busy` when it
   * has no connection to spare; an operation that writes (any method but GET) 503
   * `database_full` and `database_locked` too. Default true.
   */
  database?: boolean;
  params?: z.ZodObject;
  query?: z.ZodType<unknown, Record<string, unknown>>;
  body?: { schema: z.ZodType | Record<string, unknown>; required?: boolean; description?: string };
  responses: ZodOpenApiResponsesObject;
  /** Its own errors: those of authentication, of the checks before the routes and 500 are added. */
  errors?: Errors;
}

export type WorkflowDescription = Awaited<ReturnType<typeof describeWorkflow>>;

/** What an operation's words may depend on: the registered workflows. */
export interface DocContext {
  workflows: WorkflowDescription[];
  /** Schemas the operations add to the document's components (the start forms), by name. */
  schemas: Record<string, Record<string, unknown>>;
}

export interface Route {
  method: Method;
  /** The Express path (`:param`); the document writes it with `{param}`. */
  path: string;
  /** Default `bearer`. */
  auth?: Access;
  /** The largest body it takes (hardening.ts); default SMALL_BODY_LIMIT. */
  bodyLimit?: number;
  /** The path with a trailing slash reaches it too (Express routes it here) and is checked alike. */
  trailingSlash?: boolean;
  /**
   * Its operation; a function when its words depend on the workflows. `perWorkflow`: one
   * operation per registered workflow, the route's one parameter replaced by the workflow's name.
   */
  doc:
    | OperationDoc
    | ((d: DocContext) => OperationDoc)
    | { perWorkflow: (w: WorkflowDescription, d: DocContext) => OperationDoc };
  /** Builds the handler, once. */
  handler(ctx: ApiContext): RequestHandler;
}

/**
 * The request paths of a route as the checks before the routes see them (`req.originalUrl`
 * without its query): a parameter is one segment, and case and trailing slash count.
 */
export function pathPattern(route: Pick<Route, 'path' | 'trailingSlash'>): RegExp {
  const source = route.path
    .split('/')
    .map((s) => (s.startsWith(':') ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('\\/');
  return new RegExp(`^${source}${route.trailingSlash ? '\\/?' : ''}$`);
}

/** `/api/processes/:id` as the document writes it: `/api/processes/{id}`. */
export const documentPath = (path: string) => path.replace(/:(\w+)/g, '{$1}');

/**
 * Whether a request (its method, or any method when undefined, and its URL) is one for `routes`,
 * as the checks before the routes see it.
 */
export function matcher(
  routes: readonly Route[],
): (method: string | undefined, url: string) => boolean {
  const patterns = routes.map((r) => [r.method.toUpperCase(), pathPattern(r)] as const);
  return (method, url) => {
    const path = url.split('?')[0] ?? '';
    return patterns.some(([m, p]) => (method === undefined || m === method) && p.test(path));
  };
}

export const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});
export const noContent = (description: string) => ({ description });
