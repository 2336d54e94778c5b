import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from '../config/logger.ts';
import { isConnectionError } from '../db/pool.ts';
import {
  ConflictError,
  ForbiddenError,
  IncompleteError,
  NotFoundError,
  OrchestratorError,
  PreconditionError,
  UnavailableError,
  ValidationError,
} from '../engine/errors.ts';

/** The one error shape of the API: `{ error: { code, message, details? } }`. */
export function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

export const notFoundRoute: RequestHandler = (req, res) => {
  res.status(404).json(errorBody('route_not_found', `No route ${req.method} ${req.path}`));
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
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
    if (isConnectionError(err)) {
      res
        .status(503)
        .json(errorBody('database_unavailable', 'The database is unreachable; try again shortly'));
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
