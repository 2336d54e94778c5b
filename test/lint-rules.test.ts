// The project's own lint rules, run by ESLint on code they must refuse and code they must let by.
import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { root } from './support/paths.ts';

const eslint = new ESLint({ cwd: root });
const QUERY = `export async function f(db: { query(s: string): Promise<unknown> }) {\n  await db.query('SELECT 1');\n}\n`;

async function messages(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe('SQL only in src/db', () => {
  it('refuses a .query call anywhere else in src', async () => {
    for (const file of ['src/engine/engine.ts', 'src/api/app.ts', 'src/testing.ts']) {
      expect(await messages(file, QUERY)).toEqual([
        'no-restricted-syntax: Run SQL only in src/db/: add a function there and call it.',
      ]);
    }
  });

  it('lets src/db, the tests and the scripts query', async () => {
    for (const file of ['src/db/processes.ts', 'test/api.test.ts', 'scripts/bench/run.ts']) {
      expect(await messages(file, QUERY)).toEqual([]);
    }
  });
});

describe('test-only code stays out of production', () => {
  const IMPORT = `import { checkInvariants } from '../db/testkit/invariants.ts';\nexport const f = checkInvariants;\n`;

  it('refuses an import of the test kit from production code', async () => {
    for (const file of ['src/engine/engine.ts', 'src/api/app.ts']) {
      expect(await messages(file, IMPORT)).toEqual([
        expect.stringMatching(/^no-restricted-imports: .*Test-only code/),
      ]);
    }
  });

  it('lets the test kit import it', async () => {
    expect(await messages('src/testing.ts', IMPORT.replace('../db', './db'))).toEqual([]);
  });
});
