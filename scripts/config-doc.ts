/**
 * The README's configuration table, generated from the zod schema in src/config/index.ts: one row
 * per variable, in schema order, with its default and the `description` of its `.meta()`.
 *
 *   npm run config-doc              rewrites README.md between the config markers
 *   npm run config-doc -- --check   exits 1 when README.md differs from what would be written
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { configSchema, projectRoot } from '../src/config/index.ts';

export const START_MARKER = '<!-- config:start -->';
export const END_MARKER = '<!-- config:end -->';
export const readmePath = path.join(projectRoot, 'README.md');

type Meta = { description?: unknown; defaultText?: unknown };

/** The default as the README shows it: `defaultText`, else the schema's default value, else unset. */
function defaultOf(name: string, field: z.ZodType, meta: Meta): string {
  if (meta.defaultText !== undefined) {
    if (typeof meta.defaultText !== 'string')
      throw new Error(`${name}: defaultText is not a string`);
    return meta.defaultText;
  }
  let schema: unknown = field;
  for (;;) {
    if (schema instanceof z.ZodDefault) {
      const value: unknown = schema.def.defaultValue;
      if (value === '') return 'none';
      return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
    }
    if (schema instanceof z.ZodOptional) return 'unset';
    if (schema instanceof z.ZodPipe) {
      schema = schema.in;
      continue;
    }
    return 'required';
  }
}

const cell = (text: string) => text.replace(/\s+/g, ' ').replaceAll('|', '\\|').trim();

/** The table (without markers), ending in a newline. Throws for a variable without a description. */
export function renderConfigTable(): string {
  const rows = Object.entries(configSchema.shape).map(([name, field]) => {
    const meta: Meta = (field as z.ZodType).meta() ?? {};
    if (typeof meta.description !== 'string' || meta.description.trim() === '') {
      throw new Error(
        `${name} has no description: add .meta({ description: '…' }) to it in src/config/index.ts`,
      );
    }
    const def = defaultOf(name, field as z.ZodType, meta);
    return `| \`${name}\` | ${cell(def)} | ${cell(meta.description)} |`;
  });
  return ['| variable | default | meaning |', '|---|---|---|', ...rows, ''].join('\n');
}

/** README text with the generated table between the markers (which must each appear once). */
export function renderReadme(readme: string): string {
  const start = readme.indexOf(START_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (
    start < 0 ||
    end < start ||
    readme.indexOf(START_MARKER, start + 1) >= 0 ||
    readme.indexOf(END_MARKER, end + 1) >= 0
  ) {
    throw new Error(`README.md needs one ${START_MARKER} followed by one ${END_MARKER}`);
  }
  return (
    readme.slice(0, start) +
    `${START_MARKER}\n\n${renderConfigTable()}\n${END_MARKER}` +
    readme.slice(end + END_MARKER.length)
  );
}

function main(args: string[]): number {
  const current = readFileSync(readmePath, 'utf8');
  const wanted = renderReadme(current);
  if (args.includes('--check')) {
    if (current === wanted) return 0;
    console.error(
      'README.md: the configuration table differs from src/config/index.ts; run `npm run config-doc`',
    );
    return 1;
  }
  if (current !== wanted) writeFileSync(readmePath, wanted);
  console.log(
    current === wanted ? 'README.md is current' : 'README.md: configuration table written',
  );
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 2;
  }
}
