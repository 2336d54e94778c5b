// The typed DSL's type tests: the compiler accepts the fixtures in test/types (whose
// `@ts-expect-error` lines must each hide an error, or tsc fails), and each of those lines is
// rejected for the reason it names (`@ts-expect-error TS<code>: …`), with no other error.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const dir = path.join(root, 'test', 'types');
const config = path.join(dir, 'tsconfig.json');
const DIRECTIVE = /\/\/ @ts-expect-error TS(\d+): \S/;

const fixtures = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => path.join(dir, f));

/** Where each fixture expects an error: the line after its directive, with the code it names. */
function expectations(): string[] {
  return fixtures.flatMap((file) =>
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .flatMap((line, i) => {
        if (!line.includes('@ts-expect-error')) return [];
        const m = DIRECTIVE.exec(line);
        if (!m) throw new Error(`${file}:${i + 1}: write "// @ts-expect-error TS<code>: why"`);
        return [`${path.basename(file)}:${i + 2} TS${m[1]}`];
      }),
  );
}

/** The errors of the fixtures with their directives turned into plain comments. */
function errorsWithoutDirectives(): string[] {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    config,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (!parsed) throw new Error(`cannot read ${config}`);
  const host = ts.createCompilerHost(parsed.options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, language, ...rest) =>
    path.resolve(fileName).startsWith(dir + path.sep)
      ? ts.createSourceFile(
          fileName,
          fs.readFileSync(fileName, 'utf8').replaceAll('@ts-expect-error', 'expected error'),
          language,
        )
      : read(fileName, language, ...rest);
  const program = ts.createProgram(parsed.fileNames, parsed.options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    if (!d.file || d.start === undefined)
      return `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${path.relative(dir, d.file.fileName)}:${line + 1} TS${d.code}`;
  });
}

describe('the typed DSL', () => {
  it('compiles the type fixtures (tsc --noEmit -p test/types/tsconfig.json)', () => {
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', config], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('rejects each wrong line of the fixtures for the reason it names, and nothing else', () => {
    const expected = expectations();
    expect(expected.length).toBeGreaterThanOrEqual(20);
    expect([...new Set(errorsWithoutDirectives())].sort()).toEqual([...expected].sort());
  });
});
