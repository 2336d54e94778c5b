// What the API refuses before a route runs: bodies that are not JSON, too big or too deep, text
// Postgres cannot store (NUL, lone surrogates), in bodies and query strings alike. Each refusal
// is a 4xx with a stable code; nothing runs, so nothing is written.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import express from 'express';
import { errorBody } from './errors.ts';

/** Bodies that carry inputs (start, resume, callbacks): up to this many bytes. */
export const INPUT_BODY_LIMIT = 4 * 1024 * 1024;
/** Any other body (settings, notes, schedules). */
export const SMALL_BODY_LIMIT = 64 * 1024;
/** Nesting deeper than this is refused (a state is read and written by steps, not a tree store). */
export const MAX_DEPTH = 32;

/** Routes whose bodies are inputs (start, resume, callback and progress): the larger limit. */
const INPUT_ROUTES: [method: string, path: RegExp][] = [
  ['POST', /^\/api\/processes\/[^/]+$/],
  ['PUT', /^\/api\/processes\/[^/]+\/resume$/],
  ['POST', /^\/api\/processes\/[^/]+\/callback\/[^/]+(\/progress)?$/],
];

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

/**
 * Body parsing and checks for `/api`: JSON only (415 `unsupported_media_type` for a body of
 * another type), within the route's size (413 `payload_too_large`), at most MAX_DEPTH deep
 * (400 `state_too_large`), and no NUL or lone surrogate in any string or key of the body or the
 * query (400 `invalid_text`).
 */
export function hardenedJson(): RequestHandler[] {
  const big = express.json({ limit: INPUT_BODY_LIMIT, strict: false });
  const small = express.json({ limit: SMALL_BODY_LIMIT, strict: false });
  const mediaType: RequestHandler = (req, res, next) => {
    const hasBody =
      Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
    if (hasBody && !req.is(['application/json', 'application/*+json']))
      return refuse(res, 415, 'unsupported_media_type', 'Request bodies must be application/json');
    next();
  };
  const parse: RequestHandler = (req, res, next) => {
    const path = req.originalUrl.split('?')[0] ?? '';
    const input = INPUT_ROUTES.some(([m, r]) => m === req.method && r.test(path));
    (input ? big : small)(req, res, next);
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
