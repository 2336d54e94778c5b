// Engine settings: the global lock that pauses the engine, and the status it leads to.
import { z } from 'zod';
import { engineStatusSchema } from './responses.ts';
import { json, type Route } from './route.ts';
import { parseOr } from './schemas.ts';

export const engineStatusBodySchema = z.object({ globalLock: z.boolean() }).strict();

/** `GET/PUT /api/settings/status`: `{globalLock, runningProcesses, engineStatus}`. */
export const settingsRoutes: Route[] = [
  {
    method: 'get',
    path: '/api/settings/status',
    doc: {
      tag: 'Settings',
      operationId: 'getEngineStatus',
      summary: 'The engine status',
      responses: {
        200: json(engineStatusSchema, 'RUNNING, PAUSING (leases still held) or PAUSED'),
      },
    },
    handler:
      ({ engine }) =>
      async (_req, res) => {
        res.json(await engine.engineStatus());
      },
  },
  {
    method: 'put',
    path: '/api/settings/status',
    doc: {
      tag: 'Settings',
      operationId: 'setGlobalLock',
      summary: 'Pause (globalLock: true) or unpause the engine',
      body: { schema: engineStatusBodySchema },
      responses: { 200: json(engineStatusSchema, 'The engine status after the change') },
      errors: { 400: ['validation_error'] },
    },
    handler:
      ({ engine }) =>
      async (req, res) => {
        const { globalLock } = parseOr(
          engineStatusBodySchema,
          req.body,
          'validation_error',
          'Expected {"globalLock": true|false}',
        );
        res.json(await engine.setGlobalLock(globalLock));
      },
  },
];
