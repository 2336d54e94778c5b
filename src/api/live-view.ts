// The live view: static HTML/JS/CSS at `GET /` (no build step). The page talks to the REST API
// and to Socket.IO, whose client the Socket.IO server serves at /socket.io/socket.io.js.
import path from 'node:path';
import express, { Router } from 'express';
import { PROCESS_STATUSES, RESUMABLE_STATUSES, TERMINAL_STATUSES } from '../db/model.ts';
import { REPAIRABLE_STATUSES } from '../db/model.ts';

export const publicDir = path.join(import.meta.dirname, 'public');

export function liveViewRouter(): Router {
  const router = Router();
  // The engine's statuses and status sets, as a module the page imports: one list each, not a
  // copy in the page.
  const statusesModule = [
    `export const STATUSES = ${JSON.stringify(PROCESS_STATUSES)};`,
    `export const RESUMABLE = ${JSON.stringify(RESUMABLE_STATUSES)};`,
    `export const TERMINAL = ${JSON.stringify(TERMINAL_STATUSES)};`,
    `export const REPAIRABLE = ${JSON.stringify(REPAIRABLE_STATUSES)};`,
    '',
  ].join('\n');
  router.get('/statuses.js', (_req, res) => {
    res.type('text/javascript').set('Cache-Control', 'no-cache').send(statusesModule);
  });
  router.use(
    express.static(publicDir, {
      index: 'index.html',
      // Small files that change with deployments: always revalidate.
      maxAge: 0,
      etag: true,
    }),
  );
  return router;
}
