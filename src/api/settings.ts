// Engine settings: the global lock that pauses the engine, and the status it leads to.
import { Router } from 'express';
import { z } from 'zod';
import type { Engine } from '../engine/engine.ts';
import { parseOr } from './schemas.ts';

export const engineStatusBodySchema = z.object({ globalLock: z.boolean() }).strict();

/** `GET/PUT /api/settings/status`: `{globalLock, runningProcesses, engineStatus}`. */
export function settingsRouter(engine: Engine): Router {
  const router = Router();
  router.get('/api/settings/status', async (_req, res) => {
    res.json(await engine.engineStatus());
  });
  router.put('/api/settings/status', async (req, res) => {
    const { globalLock } = parseOr(
      engineStatusBodySchema,
      req.body,
      'validation_error',
      'Expected {"globalLock": true|false}',
    );
    res.json(await engine.setGlobalLock(globalLock));
  });
  return router;
}
