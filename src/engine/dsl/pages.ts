// `pages`: a typed form of any number of pages, written as a chain, `pages((form) =>
// form.page(a).page(b)…)`. A list literal (`[a, b]`) types up to four pages, one type parameter
// each: the compiler fixes a type parameter as soon as a page function's `state` needs it, so one
// parameter for the whole list could not also take the types of the pages after it. A chain
// types each `.page(…)` call with the pages before it, however many there are. At runtime the
// result is the list of pages, as a list literal would be.
import type { z } from 'zod';
import type { FormPage } from './steps.ts';
import type { Merge, Out, Page } from './typed.ts';

/** The fields of `A` with those of `B` over them, as the engine merges a form's pages. */
type Over<A, B> = { [K in keyof A as K extends keyof B ? never : K]: A[K] } & B;
/** One flat object type. */
type Flat<T> = { [K in keyof T]: T[K] };

/** Types only: the key under which a form of `pages` carries its types (never set). */
declare const formTypes: unique symbol;

/**
 * A form built by `pages`: at runtime its pages in order (a list); typed as what it stands for,
 * `S` the state its first page sees and `Z` all its pages' fields in one zod object type (a later
 * page's field over an earlier one's). Not typed as a list, so that a list literal of pages is
 * never read as one.
 */
export interface FormPages<S, Z extends z.ZodObject> {
  readonly [formTypes]: (state: S) => Z;
}

/**
 * A form being written: `page(p)` adds a page, whose function (if it is one) sees the state `S`
 * merged with the pages before it (`Shape`, their fields).
 */
export interface PageChain<S, Shape extends z.core.$ZodShape> {
  page<Z extends z.ZodObject>(
    page: Page<Merge<S, Out<z.ZodObject<Shape>>>, Z>,
  ): PageChain<S, Flat<Over<Shape, Z['shape']>>>;
}

/** The pages a chain holds (at runtime, the chain is this and its `page`). */
const chainPages = Symbol('pages');
interface Chain {
  page(p: FormPage): Chain;
  [chainPages]: readonly FormPage[];
}
const chain = (list: readonly FormPage[]): Chain => ({
  page: (p) => chain([...list, p]),
  [chainPages]: list,
});

/**
 * A form of any number of pages, each typed with the ones before it: `build` receives an empty
 * form and returns it with its pages, `(form) => form.page(z.object({…})).page(async (state) =>
 * z.object({…}))`. It goes where a form goes (the start form `input`, an input step's form).
 */
export function pages<S, Shape extends z.core.$ZodShape>(
  build: (form: PageChain<S, Record<never, never>>) => PageChain<S, Shape>,
): FormPages<S, z.ZodObject<Shape>> {
  const built = (build as unknown as (form: Chain) => Partial<Chain> | undefined)(chain([]));
  const list = built?.[chainPages];
  if (!list || list.length === 0)
    throw new TypeError('pages(build): build must return the form it was given with its pages');
  return [...list] as unknown as FormPages<S, z.ZodObject<Shape>>;
}
