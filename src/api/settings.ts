// Engine settings: the global lock that pauses the engine, and the status it leads to.
import { Router } from 'express';
import { z } from 'zod';
import type { Publish } from '../db/events.ts';
import type { Pool } from '../db/pool.ts';
import { getEngineStatus, setGlobalLock } from '../db/settings.ts';
import { parseOr } from './schemas.ts';

export const engineStatusBodySchema = z.object({ globalLock: z.boolean() }).strict();

/** `GET/PUT /api/settings/status`: `{globalLock, runningProcesses, engineStatus}`. */
export function settingsRouter(pool: Pool, publish: Publish): Router {
  const router = Router();
  router.get('/api/settings/status', async (_req, res) => {
    res.json(await getEngineStatus(pool));
  });
  router.put('/api/settings/status', async (req, res) => {
    const { globalLock } = parseOr(
      engineStatusBodySchema,
      req.body,
      'validation_error',
      'Expected {"globalLock": true|false}',
    );
    publish([await setGlobalLock(pool, globalLock)]);
    res.json(await getEngineStatus(pool));
  });
  return router;
}
