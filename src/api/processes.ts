// Processes and tasks: list, count, inspect, note, resume, skip, abort, delete.
import { z } from 'zod';
import { actorOf } from './auth.ts';
import { INPUT_BODY_LIMIT } from './hardening.ts';
import {
  processListSchema,
  processSchema,
  resumedAllSchema,
  stateSchema,
  statusCountsSchema,
} from './responses.ts';
import { json, noContent, type Route } from './route.ts';
import {
  listQuerySchema,
  noteSchema,
  parseOr,
  processId,
  processIdSchema,
  processViewQuerySchema,
} from './schemas.ts';

// The path parameter: the schema the routes validate with, as it is (its words are added to the
// document afterwards, see PARAMETER_WORDS in openapi.ts).
const processIdParam = z.object({ id: processIdSchema });

/** Form input: one object (the first page), an array of page inputs, or nothing. */
const formBody = z
  .union([stateSchema, z.array(stateSchema)])
  .meta({ description: 'One object (the first page), or an array of page inputs' });

export const processRoutes: Route[] = [
  {
    method: 'get',
    path: '/api/processes',
    doc: {
      tag: 'Processes',
      operationId: 'listProcesses',
      summary: 'List processes',
      description: 'Filtered, sorted and paged; `total` counts all matches.',
      query: listQuerySchema,
      responses: { 200: json(processListSchema, 'One page of processes') },
      errors: { 400: ['validation_error'] },
    },
    handler:
      ({ engine }) =>
      async (req, res) => {
        const q = parseOr(
          listQuerySchema,
          req.query,
          'validation_error',
          'Invalid query parameters',
        );
        res.json(await engine.listProcesses(q));
      },
  },
  {
    method: 'get',
    path: '/api/processes/status-counts',
    doc: {
      tag: 'Processes',
      operationId: 'statusCounts',
      summary: 'Processes and tasks by status',
      responses: { 200: json(statusCountsSchema, 'Exact counts') },
    },
    handler:
      ({ engine }) =>
      async (_req, res) => {
        res.json(await engine.statusCounts());
      },
  },
  {
    method: 'put',
    path: '/api/processes/resume-all',
    doc: {
      tag: 'Processes',
      operationId: 'resumeAllTasks',
      summary: 'Resume every failed, waiting, api_unavailable and inconsistent_data task',
      description:
        "Tasks whose workflow's authorization hooks refuse the user are left as they are.",
      responses: { 200: json(resumedAllSchema, 'How many tasks were resumed') },
      errors: { 409: ['already_running'], 503: ['engine_paused'] },
    },
    handler:
      ({ engine }) =>
      async (req, res) => {
        res.json(await engine.resumeAllTasks(actorOf(req)));
      },
  },
  {
    method: 'get',
    path: '/api/processes/:id',
    doc: {
      tag: 'Processes',
      operationId: 'getProcess',
      summary: 'One process with its steps',
      description:
        'A suspended process carries `form` (the JSON Schema of its input step, built from the current state) and `formPages`. When the form cannot be built now (a page function that fails, or lookups slower than FORM_TIMEOUT_MS), `formError` says why and `form` is absent: the process is still shown.',
      params: processIdParam,
      query: processViewQuerySchema,
      responses: { 200: json(processSchema, 'The process') },
      errors: {
        400: ['invalid_id', 'validation_error'],
        404: ['process_not_found'],
      },
    },
    handler:
      ({ engine }) =>
      async (req, res) => {
        const id = processId(req);
        const { states } = parseOr(
          processViewQuerySchema,
          req.query,
          'validation_error',
          'Invalid query parameters',
        );
        res.json(await engine.getProcess(id, { states }));
      },
  },
  {
    method: 'delete',
    path: '/api/processes/:id',
    doc: {
      tag: 'Processes',
      operationId: 'deleteTask',
      summary: 'Delete a task with its steps',
      params: processIdParam,
      responses: { 204: noContent('Deleted') },
      errors: {
        400: ['invalid_id', 'not_a_task'],
        403: ['forbidden'],
        404: ['process_not_found'],
        409: ['process_running', 'has_running_children'],
      },
    },
    handler:
      ({ engine }) =>
      async (req, res) => {
        await engine.deleteTask(processId(req), actorOf(req));
        res.status(204).end();
      },
  },
  {
    method: 'patch',
    path: '/api/processes/:id',
    doc: {
      tag: 'Processes',
      operationId: 'setNote',
      summary: "Set or clear a process's note",
      params: processIdParam,
      body: { schema: noteSchema },
      responses: { 200: json(processSchema, 'The process') },
      errors: { 400: ['invalid_id', 'validation_error'], 404: ['process_not_found'] },
    },
    handler:
      ({ engine }) =>
      async (req, res) => {
        const { note } = parseOr(
          noteSchema,
          req.body,
          'validation_error',
          'Expected {"note": string|null}',
        );
        res.json(await engine.setNote(processId(req), note));
      },
  },
  {
    method: 'put',
    path: '/api/processes/:id/resume',
    bodyLimit: INPUT_BODY_LIMIT,
    doc: {
      tag: 'Processes',
      operationId: 'resumeProcess',
      summary: 'Resume a process',
      description:
        'A suspended process takes its input step\'s form (see `form` of the process); a form of several pages takes an array of page inputs, and answers 422 `form_incomplete` with the next page while pages are missing. Any other resumable process (failed, waiting, …) is retried with an empty body; a failed or inconsistent_data one also with `{"state": {…}}`, a patch shallow-merged into its state before the retry (recorded in its steps).',
      params: processIdParam,
      body: {
        schema: formBody,
        required: false,
        description: "The input step's form input; empty for a retry",
      },
      responses: { 204: noContent('Resumed: the process continues') },
      errors: {
        400: ['invalid_id', 'validation_error', 'invalid_input'],
        403: ['forbidden'],
        404: ['process_not_found'],
        409: [
          'not_resumable',
          'workflow_changed',
          'workflow_not_found',
          'not_repairable',
          'waiting_for_children',
        ],
        422: ['form_incomplete'],
        503: ['engine_paused'],
        504: ['form_timeout'],
      },
    },
    handler:
      ({ engine }) =>
      async (req, res) => {
        await engine.resumeProcess(processId(req), req.body, actorOf(req));
        res.status(204).end();
      },
  },
  {
    method: 'put',
    path: '/api/processes/:id/skip',
    doc: {
      tag: 'Processes',
      operationId: 'skipStep',
      summary: 'Skip the failed step of a process',
      description:
        'For a failed or inconsistent_data process: its failed step is recorded `skipped` with the user, and the process continues after it (completed when it was the last step). Behind the workflow’s retry hooks.',
      params: processIdParam,
      responses: { 204: noContent('Skipped: the process continues') },
      errors: {
        400: ['invalid_id'],
        403: ['forbidden'],
        404: ['process_not_found'],
        409: ['not_repairable', 'workflow_changed', 'workflow_not_found'],
        503: ['engine_paused'],
      },
    },
    handler:
      ({ engine }) =>
      async (req, res) => {
        await engine.skipStep(processId(req), actorOf(req));
        res.status(204).end();
      },
  },
  {
    method: 'put',
    path: '/api/processes/:id/abort',
    doc: {
      tag: 'Processes',
      operationId: 'abortProcess',
      summary: 'Abort a process',
      params: processIdParam,
      responses: { 204: noContent('Aborted') },
      errors: {
        400: ['invalid_id'],
        403: ['forbidden'],
        404: ['process_not_found'],
        409: ['already_finished'],
      },
    },
    handler:
      ({ engine }) =>
      async (req, res) => {
        await engine.abortProcess(processId(req), actorOf(req));
        res.status(204).end();
      },
  },
];
