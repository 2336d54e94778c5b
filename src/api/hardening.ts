// What the API refuses before a route runs: bodies that are not JSON, too big or too deep, text
// Postgres cannot store (NUL, lone surrogates), in bodies and query strings alike. Each refusal
// is a 4xx with a stable code; nothing runs, so nothing is written.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import express from 'express';
import { errorBody } from './errors.ts';
import { matcher, type Route } from './route.ts';
import { checkedWrites } from './site-guards.ts';

/** Bodies that carry inputs (start, resume, callbacks): up to this many bytes (their `bodyLimit`). */
export const INPUT_BODY_LIMIT = 4 * 1024 * 1024;
/** Any other body (settings, notes, schedules). */
export const SMALL_BODY_LIMIT = 64 * 1024;
/** Nesting deeper than this is refused (a state is read and written by steps, not a tree store). */
export const MAX_DEPTH = 32;

const refuse = (res: Response, status: number, code: string, message: string) =>
  res.status(status).json(errorBody(code, message));

/** NUL, or a UTF-16 surrogate without its other half. */
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What is wrong with a parsed value, if anything: too deep, or text that cannot be stored. */
export function inspectValue(
  value: unknown,
  maxDepth = MAX_DEPTH,
): 'too_deep' | 'text' | undefined {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v === 'string') {
      if (UNSTORABLE.test(v)) return 'text';
    } else if (v !== null && typeof v === 'object') {
      if (depth >= maxDepth) return 'too_deep';
      if (Array.isArray(v)) for (const x of v) stack.push([x, depth + 1]);
      else
        for (const [k, x] of Object.entries(v)) {
          if (UNSTORABLE.test(k)) return 'text';
          stack.push([x, depth + 1]);
        }
    }
  }
  return undefined;
}

/** Whether a Content-Type header names JSON (`application/json`, `application/*+json`). */
export function isJsonType(contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return type === 'application/json' || /^application\/[^/]+\+json$/.test(type);
}

/**
 * Body parsing and checks for `/api`: JSON only (415 `unsupported_media_type` for a body of
 * another type; with `jsonWrites`, also for a write to one of the routes' checked writes that
 * does not say JSON, with a body or without: see site-guards.ts), within the `bodyLimit` of the
 * route of `routes` the request is for (SMALL_BODY_LIMIT when none says more; 413
 * `payload_too_large`), at most MAX_DEPTH deep
 * (400 `state_too_large`), and no NUL or lone surrogate in any string or key of the body or the
 * query (400 `invalid_text`).
 */
export function hardenedJson(
  routes: readonly Route[],
  options: { jsonWrites?: boolean } = {},
): RequestHandler[] {
  // One parser per limit; a request takes the largest limit of the routes it is for.
  const limits = [...new Set(routes.map((r) => r.bodyLimit ?? SMALL_BODY_LIMIT))].sort(
    (a, b) => b - a,
  );
  const parsers = limits.map((limit) => ({
    isFor: matcher(routes.filter((r) => (r.bodyLimit ?? SMALL_BODY_LIMIT) === limit)),
    parse: express.json({ limit, strict: false }),
  }));
  const small = express.json({ limit: SMALL_BODY_LIMIT, strict: false });
  const isCheckedWrite = options.jsonWrites ? matcher(checkedWrites(routes)) : () => false;
  const hasBody = (req: Request) =>
    Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
  const mediaType: RequestHandler = (req, res, next) => {
    if (hasBody(req) && !req.is(['application/json', 'application/*+json']))
      return refuse(res, 415, 'unsupported_media_type', 'Request bodies must be application/json');
    if (isCheckedWrite(req.method, req.originalUrl) && !isJsonType(req.get('content-type')))
      return refuse(
        res,
        415,
        'unsupported_media_type',
        'Without authentication, writes must say Content-Type: application/json, also without a body',
      );
    next();
  };
  const parse: RequestHandler = (req, res, next) => {
    // Nothing to read: the body stays undefined (the parser would make `{}` of an empty JSON body).
    if (!hasBody(req)) return next();
    const parser = parsers.find((p) => p.isFor(req.method, req.originalUrl));
    (parser?.parse ?? small)(req, res, next);
  };
  const check = (req: Request, res: Response, next: NextFunction) => {
    for (const [what, value] of [
      ['body', req.body],
      ['query', req.query],
    ] as const) {
      const problem = inspectValue(value);
      if (problem === 'too_deep')
        return refuse(
          res,
          400,
          'state_too_large',
          `The request ${what} is nested deeper than ${MAX_DEPTH} levels`,
        );
      if (problem === 'text')
        return refuse(
          res,
          400,
          'invalid_text',
          `The request ${what} holds a NUL character or a lone surrogate, which cannot be stored`,
        );
    }
    next();
  };
  return [mediaType, parse, check];
}
