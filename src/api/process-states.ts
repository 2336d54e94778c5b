// One step's state, read on its own: the live view opens a step's state when the user asks for
// it, so a process with a state of megabytes costs that once, not on every live event.
import { z } from 'zod';
import { json, type Route } from './route.ts';
import { stepStateSchema } from './responses.ts';
import { parseOr, processId, processIdSchema, stepStateQuerySchema } from './schemas.ts';

export const stepStateRoute: Route = {
  method: 'get',
  path: '/api/processes/:id/state',
  doc: {
    tag: 'Processes',
    operationId: 'getStepState',
    summary: "A step's state and what it changed, or the current state",
    description:
      "With `step` (a step row `id` from the process's `steps`): the state after that step and its delta from the step row before. Without: the current state. A `step` that is not one of this process's answers 404 `step_not_found`.",
    params: z.object({ id: processIdSchema }),
    query: stepStateQuerySchema,
    responses: { 200: json(stepStateSchema, 'The state') },
    errors: {
      400: ['invalid_id', 'validation_error'],
      404: ['process_not_found', 'step_not_found'],
    },
  },
  handler:
    ({ engine }) =>
    async (req, res) => {
      const id = processId(req);
      const { step } = parseOr(
        stepStateQuerySchema,
        req.query,
        'validation_error',
        'Invalid query parameters',
      );
      res.json(await engine.stepState(id, step));
    },
};
