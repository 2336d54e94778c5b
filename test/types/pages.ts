// Forms of any number of pages (`pages`), and async pages: each page's function sees the pages
// before it, whatever their number, and its fields join the state with their zod types.
import { pages, workflow, z, type StateOf } from '../../src/index.ts';
import type { Equal, Expect } from './helpers.ts';

/** An inventory lookup, as a page function would make one. */
declare function portsOf(device: string): Promise<string[]>;

// Six pages, some built by async lookups; the hooks see all their fields.
export const sixPages = workflow({
  name: 'typed_six_pages',
  target: 'create',
  input: pages((form) =>
    form
      .page(z.object({ site: z.string() }))
      .page((state) => z.object({ rack: z.string().default(`${state.site}-r1`) }))
      .page(async (state) => z.object({ device: z.enum([`${state.rack}-leaf-1`, 'spare']) }))
      .page(async (state) =>
        z.object({ port: z.enum((await portsOf(state.device)) as [string, ...string[]]) }),
      )
      .page((state) =>
        z.object({
          vlan: z
            .number()
            .int()
            .max(state.port.length * 1000),
        }),
      )
      .page((state) => z.object({ confirmed: z.boolean(), note: z.string().default(state.site) })),
  ),
  lockKeys: (input) => [`port:${input.device}:${input.port}`, `vlan:${input.vlan}`],
}).step('Use', ({ state }) => ({ summary: `${state.site} ${state.port} ${state.vlan}` }));

export type SixPagesState = Expect<
  Equal<
    StateOf<typeof sixPages>,
    {
      site: string;
      rack: string;
      device: `${string}-leaf-1` | 'spare';
      port: string;
      vlan: number;
      confirmed: boolean;
      note: string;
      summary: string;
    }
  >
>;

// An input step of five pages, the first one seeing the process state.
export const fivePagesInput = sixPages
  .inputStep(
    'Cabling',
    pages((form) =>
      form
        .page((state) => z.object({ cable: z.string().default(`${state.device}-c`) }))
        .page(z.object({ length: z.number() }))
        .page((state) => z.object({ colour: z.string().default(state.cable) }))
        .page(async (state) => z.object({ labelled: z.boolean().default(state.length > 3) }))
        .page((state) => z.object({ checkedBy: z.string().min(state.colour.length) })),
    ),
  )
  .step('Done', ({ state }) => ({ cabled: state.labelled && state.checkedBy.length > 0 }));

export type FivePagesState = Expect<
  Equal<
    Pick<StateOf<typeof fivePagesInput>, 'cable' | 'length' | 'colour' | 'labelled' | 'cabled'>,
    { cable: string; length: number; colour: string; labelled: boolean; cabled: boolean }
  >
>;

// A later page's field of the same name wins, as the engine merges pages.
export const overridden = workflow({
  name: 'typed_pages_override',
  target: 'create',
  input: pages((form) =>
    form.page(z.object({ size: z.string() })).page(z.object({ size: z.number() })),
  ),
}).step('Use', ({ state }) => ({ double: state.size * 2 }));

export const pageTooEarly = workflow({
  name: 'typed_pages_early',
  target: 'create',
  input: pages((form) =>
    form
      .page(z.object({ a: z.string() }))
      .page(z.object({ b: z.string() }))
      .page(z.object({ c: z.string() }))
      .page(z.object({ d: z.string() }))
      // @ts-expect-error TS2339: the fifth page cannot see what the sixth asks
      .page((state) => z.object({ e: z.string().default(state.f) }))
      .page(z.object({ f: z.string() })),
  ),
});

export const pageWrongType = workflow({
  name: 'typed_pages_wrong',
  target: 'create',
  input: pages((form) =>
    form
      .page(z.object({ a: z.number() }))
      .page(z.object({ b: z.string() }))
      .page(z.object({ c: z.string() }))
      .page(z.object({ d: z.string() }))
      // @ts-expect-error TS2339: `a` is a number
      .page((state) => z.object({ e: z.string().default(state.a.toUpperCase()) })),
  ),
});

// A list of pages takes async page functions too.
export const asyncList = workflow({
  name: 'typed_async_list',
  target: 'create',
  input: [
    z.object({ device: z.string() }),
    async (state) =>
      z.object({ port: z.enum((await portsOf(state.device)) as [string, ...string[]]) }),
  ],
}).inputStep('Confirm', async (state) => z.object({ ok: z.literal(state.port.length > 0) }));

export type AsyncListState = Expect<
  Equal<StateOf<typeof asyncList>, { device: string; port: string; ok: boolean }>
>;
