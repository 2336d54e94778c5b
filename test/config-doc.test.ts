import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { configSchema, configWarnings, loadConfig, projectRoot } from '../src/config/index.ts';
import {
  END_MARKER,
  START_MARKER,
  readmePath,
  renderConfigTable,
  renderReadme,
} from '../scripts/config-doc.ts';

const run = promisify(execFile);
const script = path.join(projectRoot, 'scripts', 'config-doc.ts');

describe('npm run config-doc', () => {
  it("the README's configuration table is the one generated from the config schema", () => {
    const readme = readFileSync(readmePath, 'utf8');
    const between = readme.slice(
      readme.indexOf(START_MARKER) + START_MARKER.length,
      readme.indexOf(END_MARKER),
    );
    // On failure: run `npm run config-doc` and commit README.md.
    expect(between.trim()).toBe(renderConfigTable().trim());
    expect(renderReadme(readme)).toBe(readme);
  });

  it('documents every variable of the schema, with a description', () => {
    const table = renderConfigTable();
    for (const name of Object.keys(configSchema.shape)) {
      expect(table).toContain(`| \`${name}\` |`);
    }
  });

  it('--check exits 0 on the current README', async () => {
    const { stderr } = await run(process.execPath, [script, '--check'], { cwd: projectRoot });
    expect(stderr).toBe('');
  });

  it('finds a stale table and replaces only what lies between the markers', () => {
    const stale = `intro\n\n${START_MARKER}\n| old | table |\n${END_MARKER}\n\nafter\n`;
    const fresh = renderReadme(stale);
    expect(fresh).not.toBe(stale);
    expect(fresh.startsWith(`intro\n\n${START_MARKER}\n`)).toBe(true);
    expect(fresh.endsWith(`${END_MARKER}\n\nafter\n`)).toBe(true);
    expect(renderReadme(fresh)).toBe(fresh);
    expect(() => renderReadme('no markers')).toThrow(/config:start/);
  });
});

describe('renamed variables', () => {
  it('MAX_WORKERS is read as STEP_THREADS while that is unset, with a warning', () => {
    expect(loadConfig({ MAX_WORKERS: '3' }).STEP_THREADS).toBe(3);
    expect(configWarnings({ MAX_WORKERS: '3' })).toEqual([
      'MAX_WORKERS is deprecated: set STEP_THREADS instead (read as STEP_THREADS for now)',
    ]);
    expect(loadConfig({ MAX_WORKERS: '3', STEP_THREADS: '5' }).STEP_THREADS).toBe(5);
    expect(configWarnings({ MAX_WORKERS: '3', STEP_THREADS: '5' })).toEqual([
      'MAX_WORKERS is deprecated and ignored: STEP_THREADS is set',
    ]);
    expect(configWarnings({ STEP_THREADS: '5' })).toEqual([]);
    expect(() => loadConfig({ MAX_WORKERS: '0' })).toThrow(/STEP_THREADS/);
  });
});
