// The URLs callback steps hand out: `POST /api/processes/:id/callback/:token` answers the step,
// `…/progress` reports progress. Callback URLs carry their own credential: the token (checked by
// the engine), so they are open.
import type { Request } from 'express';
import { z } from 'zod';
import { NotFoundError } from '../engine/errors.ts';
import { INPUT_BODY_LIMIT } from './hardening.ts';
import { noContent, type Route } from './route.ts';
import { callbackTokenSchema, processId, processIdSchema } from './schemas.ts';

/** A callback token's shape (43 base64url characters); anything else is a token of no callback. */
function callbackToken(req: Request): string {
  const token = String(req.params.token ?? '');
  if (!callbackTokenSchema.safeParse(token).success)
    throw new NotFoundError('callback_not_found', 'No callback with this token for this process');
  return token;
}

// The path parameters: the schemas the routes validate with, as they are (their words are added
// to the document afterwards, see PARAMETER_WORDS in openapi.ts).
const callbackParams = z.object({ id: processIdSchema, token: callbackTokenSchema });

export const callbackRoutes: Route[] = [
  {
    method: 'post',
    path: '/api/processes/:id/callback/:token',
    auth: 'open',
    bodyLimit: INPUT_BODY_LIMIT,
    doc: {
      tag: 'Callbacks',
      operationId: 'answerCallback',
      summary: 'Answer a callback step',
      description:
        "The URL a callback step handed out; its token is the credential (no bearer token). The body is stored under the step's result key (after the step's `validate`, whose refusal fails the process) and the process continues. At most one answer applies.",
      params: callbackParams,
      body: { schema: z.unknown(), required: false, description: 'Any JSON' },
      responses: { 204: noContent('Answered: the process continues') },
      errors: {
        400: ['invalid_id', 'invalid_input'],
        404: ['callback_not_found'],
        409: ['not_awaiting_callback'],
        503: ['engine_paused'],
      },
    },
    handler:
      ({ engine }) =>
      async (req, res) => {
        await engine.answerCallback(processId(req), callbackToken(req), req.body ?? null);
        res.status(204).end();
      },
  },
  {
    method: 'post',
    path: '/api/processes/:id/callback/:token/progress',
    auth: 'open',
    bodyLimit: INPUT_BODY_LIMIT,
    doc: {
      tag: 'Callbacks',
      operationId: 'callbackProgress',
      summary: 'Report progress of a pending callback',
      description:
        'Stored (the process shows it as `callback.progress`) and announced live; the process keeps waiting.',
      params: callbackParams,
      body: { schema: z.unknown(), required: false, description: 'Any JSON' },
      responses: { 204: noContent('Stored') },
      errors: {
        400: ['invalid_id', 'invalid_input'],
        404: ['callback_not_found'],
        409: ['not_awaiting_callback'],
      },
    },
    handler:
      ({ engine }) =>
      async (req, res) => {
        await engine.callbackProgress(processId(req), callbackToken(req), req.body ?? null);
        res.status(204).end();
      },
  },
];
