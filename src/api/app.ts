import express from 'express';
import type { Logger } from '../config/logger.ts';
import cors from 'cors';
import helmet from 'helmet';
import { authenticate, metricsTokenCheck, type Authenticator } from './auth.ts';
import { hardenedJson } from './hardening.ts';
import { hostCheck, originCheck, type SitePolicy } from './site-guards.ts';
import { errorHandler, notFoundRoute } from './errors.ts';
import type { ApiContext, Route } from './route.ts';
import { ROUTERS } from './routes.ts';

export interface AppOptions extends ApiContext {
  logger: Logger;
  /** Routers mounted after the routes, before the 404 handler (the live view). */
  extend?: (app: express.Express) => void;
  /** Who may call `/api` (see auth.ts). Default: everyone, as `anonymous`. */
  auth?: Authenticator;
  /** Origins allowed to call the API from a browser (CORS). Default: none. */
  corsOrigins?: readonly string[];
  /** The routes served, by router (the first the app's own). Default: all of them (routes.ts). */
  routers?: readonly (readonly Route[])[];
  /** Express's `trust proxy` (TRUST_PROXY): who `req.ip` is. Default: the connection's address. */
  trustProxy?: boolean | number | string;
  /**
   * Without authentication: the hosts and origins a browser may reach the API from
   * (site-guards.ts). Checked only when `auth` requires no credential.
   */
  site?: SitePolicy;
}

export function createApp(options: AppOptions): express.Express {
  const { logger, extend, auth, corsOrigins = [], routers = ROUTERS, site } = options;
  const routes = routers.flat();
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', options.trustProxy ?? false);
  // Without a credential to ask for, only requests for one of its own names, and writes from no
  // page but its own (site-guards.ts).
  const unauthenticated = site !== undefined && !auth?.required;
  // Security headers (helmet: a maintained set with a same-origin Content-Security-Policy). The
  // live page loads only its own scripts and styles, and talks to its own origin.
  app.use(helmet());
  if (unauthenticated) app.use(hostCheck(site));
  // CORS is off unless origins are configured.
  if (corsOrigins.length > 0)
    app.use('/api', cors({ origin: [...corsOrigins], maxAge: 600, exposedHeaders: ['Location'] }));
  // Before the body is read: a request without a valid credential costs nothing more.
  const guards = auth ? authenticate(auth, routes) : [];
  if (guards.length > 0) app.use('/api', ...guards);
  if (unauthenticated) app.use('/api', originCheck(site, routes));
  app.use('/api', ...hardenedJson(routes, { jsonWrites: unauthenticated }));
  // A write that went through tells the health check the database writes again.
  const { databaseWatch } = options;
  if (databaseWatch)
    app.use('/api', (req, res, next) => {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        res.once('finish', () => {
          if (res.statusCode < 400) databaseWatch.wrote();
        });
      next();
    });

  routers.forEach((group, i) => {
    const router = i === 0 ? app : express.Router();
    for (const route of group) {
      const handler = route.handler(options);
      if (route.auth === 'metricsToken')
        router[route.method](route.path, metricsTokenCheck(options.metricsToken), handler);
      else router[route.method](route.path, handler);
    }
    if (router !== app) app.use(router);
  });

  extend?.(app);
  app.use('/api', notFoundRoute);
  app.use(errorHandler(logger, databaseWatch && ((err) => databaseWatch.refused(err))));
  return app;
}
