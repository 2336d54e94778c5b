import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../config/logger.ts';
import {
  isConnectionError,
  isDiskFull,
  isLockTimeout,
  isStatementTimeout,
  isTooManyClients,
} from '../db/pool.ts';
import {
  ConflictError,
  ForbiddenError,
  IncompleteError,
  NotFoundError,
  OrchestratorError,
  PreconditionError,
  TimeoutError,
  UnavailableError,
  ValidationError,
} from '../engine/errors.ts';

/** Every stable error `code` of the API and what it means. */
export const ERROR_CODES = {
  validation_error:
    'the body, the query or a form page does not validate (zod issues in `details`, with `page` for forms of several pages)',
  invalid_json: 'the body is not valid JSON',
  bad_request: 'the body cannot be read (an encoding or charset it does not know, or cut short)',
  invalid_id: 'the process id is not a uuid',
  invalid_text: 'the body or the query holds a NUL character or a lone surrogate',
  invalid_input: 'the input cannot be stored',
  state_too_large: 'the body is nested too deep, or the state would be too large to store',
  not_a_task: 'the process is a workflow: only tasks are deleted',
  invalid_schedule: 'the cron expression or the time zone cannot be read',
  unauthorized: 'no valid bearer token',
  forbidden:
    "the workflow's authorization hook, or the input step's assignee role, refuses this user",
  workflow_not_found: 'no workflow of this name is registered',
  process_not_found: 'no process with this id',
  callback_not_found:
    'no callback with this token for this process (tokens are compared in constant time)',
  schedule_not_found: 'no schedule of this name',
  step_not_found: 'the process has no step row with this id',
  route_not_found: 'no such route',
  not_resumable: 'the process is in a status that cannot be resumed (or is being resumed already)',
  workflow_changed:
    'the workflow definition changed under the process: its step is not where the process stopped',
  already_finished: 'the process is completed or aborted already',
  already_running: 'a resume of all tasks is running already',
  process_running: 'the task is running: abort it first',
  has_running_children:
    'the task has child processes that have not ended: abort it first (its children are aborted with it)',
  resource_locked: "another process holds one of the start's resource keys",
  not_awaiting_callback:
    'the process does not wait for this callback (answered already, timed out or aborted)',
  precondition_failed: "the workflow's run predicate refuses the start",
  payload_too_large: 'the body is larger than the route accepts',
  unsupported_media_type:
    'the body is not application/json (without authentication: a write that does not say `Content-Type: application/json`, also without a body)',
  form_incomplete:
    'pages of the form are missing: `details.page` and `details.form` (the JSON Schema of the next page)',
  form_timeout:
    "the form's page functions or refinements (lookups) took longer than FORM_TIMEOUT_MS: nothing was written; try again",
  too_many_requests:
    'too many failed authentications from this address, or with this credential: try again in a minute (a valid token is never refused)',
  host_refused:
    'without authentication: the `Host` is not a name the API answers to (the bound HOST, loopback, PUBLIC_URL, ALLOWED_HOSTS)',
  origin_refused:
    "without authentication: a write from a page of another origin (not the API's own, PUBLIC_URL's or one of CORS_ORIGINS)",
  internal_error: 'an unexpected error (logged)',
  engine_paused: 'the engine is paused (global lock): nothing starts or resumes',
  not_repairable:
    'only the failed step of a failed or inconsistent_data process can be skipped or retried on a patched state',
  waiting_for_children:
    'the process waits for the child processes it started: it goes on when they have ended',
  database_unavailable: 'the database is unreachable: try again shortly',
  database_busy:
    'the database refuses new connections (too many clients), or a read took longer than API_READ_TIMEOUT_MS: nothing was written; try again shortly',
  database_full:
    'the database cannot write, its disk is full: nothing was written; try again once space is freed',
  database_locked:
    'a row or lock the operation needs is held by another session for longer than DB_LOCK_TIMEOUT_MS (a client cut off mid-transaction holds it at most DB_IDLE_IN_TRANSACTION_TIMEOUT_MS): nothing was written; try again shortly',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
/** The error codes an operation can answer, by HTTP status. */
export type Errors = Partial<Record<number, ErrorCode[]>>;

/** The one error shape of the API: `{ error: { code, message, details? } }`. */
export function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

/**
 * Errors of the database a client cannot fix but may try again after: the code, the message and
 * how many seconds to wait (`Retry-After`). Undefined for anything else.
 */
export function databaseRefusal(
  err: unknown,
): { code: ErrorCode; message: string; retryAfter: number } | undefined {
  const r = DATABASE_REFUSALS.find(([is]) => is(err));
  return r && { code: r[1], message: r[2], retryAfter: r[3] };
}

/** Which refusal is which: the test, the code, the message, and Retry-After in seconds. */
const DATABASE_REFUSALS: [(err: unknown) => boolean, ErrorCode, string, number][] = [
  [isDiskFull, 'database_full', 'The database cannot write: its disk is full', 30],
  [
    isTooManyClients,
    'database_busy',
    'The database refuses new connections (too many clients); try again shortly',
    1,
  ],
  [
    isStatementTimeout,
    'database_busy',
    'The database did not answer in time; try again shortly',
    1,
  ],
  [
    isLockTimeout,
    'database_locked',
    'Another session holds a row or lock this operation needs; try again shortly',
    1,
  ],
  [isConnectionError, 'database_unavailable', 'The database is unreachable; try again shortly', 1],
];

export const notFoundRoute: RequestHandler = (req, res) => {
  res.status(404).json(errorBody('route_not_found', `No route ${req.method} ${req.path}`));
};

/** `onRefused`: told of each refusal of the database (disk full, no connection to spare, …). */
export function errorHandler(
  logger: Logger,
  onRefused?: (err: unknown) => void,
): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const status = (err as { status?: number; type?: string }).status;
    const type = (err as { type?: string }).type;
    if (type === 'entity.parse.failed') {
      res
        .status(400)
        .json(
          errorBody('invalid_json', `Request body is not valid JSON: ${(err as Error).message}`),
        );
      return;
    }
    if (type === 'entity.too.large') {
      res.status(413).json(errorBody('payload_too_large', 'Request body is too large'));
      return;
    }
    if (err instanceof OrchestratorError) {
      const httpStatus =
        err instanceof NotFoundError
          ? 404
          : err instanceof ValidationError
            ? 400
            : err instanceof ConflictError
              ? 409
              : err instanceof UnavailableError
                ? 503
                : err instanceof IncompleteError
                  ? 422
                  : err instanceof PreconditionError
                    ? 412
                    : err instanceof ForbiddenError
                      ? 403
                      : err instanceof TimeoutError
                        ? 504
                        : 400;
      res.status(httpStatus).json(errorBody(err.code, err.message, err.details));
      return;
    }
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const code = status === 415 ? 'unsupported_media_type' : 'bad_request';
      res.status(status).json(errorBody(code, (err as Error).message));
      return;
    }
    // Input Postgres refused (a data exception, or a value past its limits) that the checks
    // before it let through: the client's, so a 400, and never the database's message.
    const sqlState = (err as { code?: unknown }).code;
    if (typeof sqlState === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(sqlState)) {
      logger.warn('input refused by the database', { method: req.method, path: req.path, err });
      res
        .status(400)
        .json(
          sqlState.startsWith('54')
            ? errorBody('state_too_large', 'The input is too large to be stored')
            : errorBody('invalid_input', 'The input cannot be stored'),
        );
      return;
    }
    const refusal = databaseRefusal(err);
    if (refusal) {
      onRefused?.(err);
      if (refusal.code !== 'database_unavailable')
        logger.warn('the database refused a request', {
          method: req.method,
          path: req.path,
          code: refusal.code,
          err: (err as Error).message,
        });
      res
        .status(503)
        .set('Retry-After', String(refusal.retryAfter))
        .json(errorBody(refusal.code, refusal.message));
      return;
    }
    logger.error('request failed', {
      method: req.method,
      path: req.path,
      err,
      stack: (err as Error).stack,
    });
    res.status(500).json(errorBody('internal_error', 'Internal error'));
  };
}
