// Forms: a start form or an input step's form is a list of pages, each a zod object or a function
// building one from the state and the pages given so far. A request carries one object (the
// first page) or an array of page inputs; the engine checks them page by page and, while pages
// are missing, answers with the next one (422 `form_incomplete`), writing nothing. Page functions
// and refinements may be async (a page built from an inventory query, a refinement that looks a
// value up): one evaluation of a form (all its pages) has `timeoutMs` (FORM_TIMEOUT_MS), after
// which it is 504 `form_timeout`, and nothing is written.
import { z } from 'zod';
import type { FormPage } from './dsl.ts';
import { IncompleteError, TimeoutError, ValidationError } from './errors.ts';
import type { State } from './types.ts';

/**
 * A page refuses keys it does not name, unless its author said otherwise (`z.looseObject`, or a
 * catchall): a misspelt field is an error, not a default silently used.
 */
const strictByDefault = (page: z.ZodObject): z.ZodObject => {
  if (page._zod.def.catchall !== undefined) return page;
  // Made once per page: a new schema is compiled again at its first parse (zod's JIT), which
  // cost a start more than the rest of the request.
  let strict = strictPages.get(page);
  if (!strict) strictPages.set(page, (strict = page.strict()));
  return strict;
};
const strictPages = new WeakMap<z.ZodObject, z.ZodObject>();

/** How long one evaluation of a form may take by default (FORM_TIMEOUT_MS). */
export const DEFAULT_FORM_TIMEOUT_MS = 5_000;

/** How a form is evaluated: its time limit in milliseconds. */
export interface FormOptions {
  timeoutMs: number;
}

/**
 * Runs `evaluate` (one evaluation of a form) within `timeoutMs`: past it, 504 `form_timeout`.
 * The page functions still running are left to finish; what they give is not used.
 */
async function withinLimit<T>(what: string, timeoutMs: number, evaluate: () => Promise<T>) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new TimeoutError(
            'form_timeout',
            `The form of ${what} took longer than ${timeoutMs} ms to evaluate (FORM_TIMEOUT_MS): a lookup in it is slow or hangs`,
            { details: { timeoutMs } },
          ),
        ),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([evaluate(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Builds page `i` from the state and the pages before it (its function may be async); a builder
 * that fails is a 400.
 */
export async function buildPage(
  pages: FormPage[],
  i: number,
  state: State,
  given: State[],
): Promise<z.ZodObject> {
  const page = pages[i]!;
  if (page instanceof z.ZodObject) return strictByDefault(page);
  let built: unknown;
  try {
    built = await page(state, given);
  } catch (err) {
    throw new ValidationError(
      'validation_error',
      `Page ${i + 1} of the form cannot be built from this input: ${(err as Error).message}`,
      { details: { page: i } },
    );
  }
  if (!(built instanceof z.ZodObject))
    throw new Error(`page ${i + 1} of the form did not return a zod object`);
  return strictByDefault(built);
}

/** A page as JSON Schema (the input side: defaults optional). */
export const pageSchema = (page: z.ZodObject) => z.toJSONSchema(page, { io: 'input' });

/** The first page as JSON Schema, built from `state` within the form's time limit. */
export function firstPage(pages: FormPage[], state: State, what: string, options: FormOptions) {
  return withinLimit(what, options.timeoutMs, async () =>
    pageSchema(await buildPage(pages, 0, state, [])),
  );
}

const isEmptyBody = (body: unknown) =>
  body === undefined ||
  body === null ||
  (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0);

/**
 * Checks `body` against the pages of a form and returns the pages' inputs merged (later pages
 * win). `state`: what page functions see besides the pages (an input step's process state; `{}`
 * for a start form). Throws 400 `validation_error` (with `details.page` and the issues) for a page
 * that does not validate or pages beyond the form's, and 422 `form_incomplete` (with
 * `details.page` and `details.form`, the next page's JSON Schema) while pages are missing; 504
 * `form_timeout` when the pages' functions and refinements take longer than `options.timeoutMs`.
 */
export function parseForm(
  pages: FormPage[],
  body: unknown,
  state: State,
  what: string,
  options: FormOptions,
): Promise<State> {
  return withinLimit(what, options.timeoutMs, () => checkPages(pages, body, state, what));
}

async function checkPages(
  pages: FormPage[],
  body: unknown,
  state: State,
  what: string,
): Promise<State> {
  // One object is the first page; an empty body is no page at all for a form of several pages
  // (the answer names the first), and an empty first page for a form of one.
  const given: unknown[] = Array.isArray(body)
    ? body
    : isEmptyBody(body) && pages.length > 1
      ? []
      : [body ?? {}];
  if (given.length > pages.length) {
    throw new ValidationError(
      'validation_error',
      `${what} has ${pages.length} page(s), ${given.length} were given`,
      { details: { pages: pages.length, given: given.length } },
    );
  }
  const parsed: State[] = [];
  let merged: State = {};
  for (let i = 0; i < pages.length; i++) {
    const schema = await buildPage(pages, i, { ...state, ...merged }, parsed);
    if (i >= given.length) {
      throw new IncompleteError(
        'form_incomplete',
        `${what}: page ${i + 1} of ${pages.length} is missing`,
        { details: { page: i, pages: pages.length, form: pageSchema(schema) } },
      );
    }
    let r: z.ZodSafeParseResult<State>;
    try {
      r = await schema.safeParseAsync(given[i]);
    } catch (err) {
      // A refinement that throws (its lookup failed) refuses the input, like a builder that does.
      throw new ValidationError(
        'validation_error',
        `Page ${i + 1} of the form cannot be checked: ${(err as Error).message}`,
        { details: { page: i } },
      );
    }
    if (!r.success) {
      throw new ValidationError(
        'validation_error',
        pages.length > 1 ? `Invalid input for ${what}, page ${i + 1}` : `Invalid input for ${what}`,
        {
          details: r.error.issues.map((issue) => ({
            path: issue.path,
            message: issue.message,
            code: issue.code,
            ...(pages.length > 1 ? { page: i } : {}),
          })),
        },
      );
    }
    parsed.push(r.data);
    merged = { ...merged, ...r.data };
  }
  return merged;
}
