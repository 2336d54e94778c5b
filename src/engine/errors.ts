import type { StepError } from './types.ts';

/** Throw from a step to end the process as `aborted`. */
export class AbortProcess extends Error {
  override name = 'AbortProcess';
}

/** Throw from a step when an external API is unreachable: status `api_unavailable`, resumable. */
export class ApiUnavailable extends Error {
  override name = 'ApiUnavailable';
}

/** Throw from a step when data it depends on is inconsistent: status `inconsistent_data`. */
export class InconsistentData extends Error {
  override name = 'InconsistentData';
}

/** Turns anything a step threw into a cloneable error that names the status it leads to. */
export function toStepError(err: unknown): StepError {
  const e = err instanceof Error ? err : new Error(String(err));
  const outcome =
    e instanceof AbortProcess
      ? 'aborted'
      : e instanceof ApiUnavailable
        ? 'api_unavailable'
        : e instanceof InconsistentData
          ? 'inconsistent_data'
          : 'failed';
  return {
    outcome,
    name: e.name,
    message: e.message || e.name,
    ...(e.stack ? { stack: e.stack } : {}),
  };
}

/** Errors of the engine's own API, each with a stable `code` the HTTP layer maps to a status. */
export class OrchestratorError extends Error {
  override name = 'OrchestratorError';
  readonly code: string;
  readonly details?: unknown;
  constructor(code: string, message: string, options?: { details?: unknown; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.details !== undefined) this.details = options.details;
  }
}

export class NotFoundError extends OrchestratorError {
  override name = 'NotFoundError';
}
export class ValidationError extends OrchestratorError {
  override name = 'ValidationError';
}
export class ConflictError extends OrchestratorError {
  override name = 'ConflictError';
}
/** The engine cannot take the request right now (global lock set): HTTP 503. */
export class UnavailableError extends OrchestratorError {
  override name = 'UnavailableError';
}
/** The request is well formed but not complete yet (a form with pages still missing): HTTP 422. */
export class IncompleteError extends OrchestratorError {
  override name = 'IncompleteError';
}
/** A start refused by its workflow's run predicate: HTTP 412. */
export class PreconditionError extends OrchestratorError {
  override name = 'PreconditionError';
}
/** The user may not do this (an authorization hook, or the input step's assignee): HTTP 403. */
export class ForbiddenError extends OrchestratorError {
  override name = 'ForbiddenError';
}
/** A form function (a page built from a lookup, an async refinement) took longer than allowed: HTTP 504. */
export class TimeoutError extends OrchestratorError {
  override name = 'TimeoutError';
}
