// The operator page at production scale, in Chromium, on 100,000 seeded processes: find any
// process (pages to the last, sorting, search by id prefix and by a state value), see why one
// failed (traceback, failing step), a 2 MB state opened in under a second, a confirmation
// cancelled then accepted, the settings view, the 390 px layout, and a keyboard-only walk.
// Screenshots: test-artifacts/operator-page/*.png (gitignored).
import fs from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type Chromium } from '../scripts/support/chromium.ts';
import { seedProcesses } from '../src/db/testkit/seed.ts';
import { deleteSchedules, useHarness } from './support/harness.ts';
import { root } from './support/paths.ts';

const WAIT = { timeout: 20_000 };
const ARTIFACTS = path.join(root, 'test-artifacts', 'operator-page');
const SEEDED = 100_000;

// Hand-made rows: no invariant check.
const h = useHarness({ executor: 'threadpool', invariants: false });
let browser: BrowserContext;
let chrome: Chromium | undefined;

beforeAll(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // A schedule's tick would add a process in the middle of tests that count the seeded ones.
  await deleteSchedules(h);
  await seedProcesses(h.db.pool, SEEDED);
  chrome = await launchChromium('The operator page test');
  browser = chrome.context;
}, 120_000);
afterAll(async () => {
  await chrome?.close();
});

async function withPage(hash: string, fn: (page: Page) => Promise<void>, width = 1280) {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height: 900 });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  try {
    await page.goto(`${h.api.url}/${hash}`);
    await page.waitForSelector('#connection.online', WAIT);
    await fn(page);
    expect(errors).toEqual([]);
  } catch (err) {
    await page.screenshot({
      path: path.join(ARTIFACTS, `failed-${Date.now()}.png`),
      fullPage: true,
    });
    (err as Error).message +=
      `\n--- page ${page.url()}\n${(await page.innerText('body')).slice(0, 2000)}\n${errors.join('\n')}`;
    throw err;
  } finally {
    await page.close();
  }
}
const shot = (page: Page, name: string) =>
  page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
const firstIds = (page: Page) =>
  page.$$eval('#processes tbody tr[data-id]', (trs) => trs.map((t) => t.getAttribute('data-id')));
const idOf = async (device: number) =>
  (
    await h.db.pool.query<{ id: string }>(
      `SELECT process_id AS id FROM orchestrator.process_steps WHERE state->>'device' = $1`,
      [`sw-${String(device).padStart(7, '0')}`],
    )
  ).rows[0]!.id;

describe('the operator page on 100,000 processes', { timeout: 180_000 }, () => {
  it('pages to the last page, sorts, and finds by id prefix and by a state value; the URL keeps it', async () => {
    await withPage('#/', async (page) => {
      await page.waitForSelector('#total:has-text("of 100,000 processes")', WAIT);
      await page.click('#page-last');
      await page.waitForSelector('#page-info:text-is("Page 4,000 of 4,000")', WAIT);
      expect(page.url()).toContain('page=4000');
      // The oldest process (started SEEDED seconds ago) is the last row of the last page.
      expect((await firstIds(page)).at(-1)).toBe(await idOf(SEEDED));
      await page.reload();
      await page.waitForSelector('#page-info:text-is("Page 4,000 of 4,000")', WAIT);
      await page.selectOption('#page-size', '100');
      await page.waitForSelector('#page-info:text-is("Page 1 of 1,000")', WAIT);
      await page.click('button.sort[data-sort="workflowName"]');
      await page.waitForSelector(
        'th[aria-sort="descending"] button[data-sort="workflowName"]',
        WAIT,
      );
      await page.waitForFunction(
        () => document.querySelector('#processes tbody tr td')?.textContent === 'validate_device',
        undefined,
        WAIT,
      );
      await page.click('button.sort[data-sort="workflowName"]');
      await page.waitForFunction(
        () => document.querySelector('#processes tbody tr td')?.textContent === 'flaky',
        undefined,
        WAIT,
      );
      await shot(page, 'list-sorted');

      const id = await idOf(54_321);
      await page.fill('#search', id.slice(0, 8));
      await page.press('#search', 'Enter');
      await page.waitForSelector(`#processes tr[data-id="${id}"]`, WAIT);
      expect((await firstIds(page)).every((x) => x!.startsWith(id.slice(0, 8)))).toBe(true);
      await page.fill('#search', 'sw-0012345');
      await page.press('#search', 'Enter');
      const byDevice = await idOf(12_345);
      await page.waitForSelector(`#processes tr[data-id="${byDevice}"]`, WAIT);
      await page.waitForSelector('#total:has-text("of 1 process")', WAIT);
      expect(await firstIds(page)).toEqual([byDevice]);
      expect(page.url()).toContain('search=sw-0012345');
      await shot(page, 'list-search-state-value');
    });
  });

  it('shows why a process failed: the traceback unfolds and copies, the failing step is marked, steps have start, end and duration', async () => {
    const id = await idOf(13); // every 10th + 3 failed
    await withPage(`#/process/${id}`, async (page) => {
      await page.waitForSelector('#process-status:text-is("failed")', WAIT);
      expect(await page.$eval('#traceback', (d) => (d as HTMLDetailsElement).open)).toBe(false);
      await page.click('#traceback summary');
      await page.waitForSelector('#traceback-text:visible', WAIT);
      expect(await page.textContent('#traceback-text')).toContain(
        'at step12 (workflows/validate_device.ts',
      );
      await page.waitForSelector('#steps tr.step.failing', WAIT);
      expect(await page.textContent('#steps tr.step.failing td.duration')).toBe('1.0 s');
      await page.waitForSelector('#timeline .timeline-step', WAIT);
      await shot(page, 'failed-process');
    });
  });

  it('opens a 2 MB state in under a second, collapsed until asked; a live event reads no state', async () => {
    const id = await idOf(20);
    const big = {
      devices: Array.from({ length: 20_000 }, (_, i) => ({
        name: `dev-${i}`,
        port: i,
        description: 'x'.repeat(60),
      })),
    };
    expect(JSON.stringify(big).length).toBeGreaterThan(2_000_000);
    await h.db.pool.query(
      `INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, started_at) VALUES ($1, 1, 'Big', 'success', $2, now())`,
      [id, big],
    );
    await withPage(`#/process/${id}`, async (page) => {
      await page.waitForSelector('#steps tr.step:has-text("Big")', WAIT);
      const stateReads: string[] = [];
      page.on('request', (r) => {
        if (r.url().includes('/state')) stateReads.push(r.url());
      });
      expect(await page.$eval('#current-state-box', (d) => (d as HTMLDetailsElement).open)).toBe(
        false,
      );
      const t0 = Date.now();
      await page.click('#current-state-box > summary');
      await page.waitForSelector('#current-state-tree', WAIT);
      // Read and drawn, as the page timed it (the click's round trip through the test is not).
      const rendered = Number(await page.getAttribute('#current-state-box', 'data-render-ms'));
      expect(rendered).toBeLessThan(1000);
      expect(Date.now() - t0).toBeLessThan(3000);
      await page.click('#current-state-tree > details > .json-children > details summary');
      await page.waitForSelector(
        '#current-state-tree details.json-node details.json-node details.json-node',
        WAIT,
      );
      // A step's own state opens below the table, not in a cell.
      await page.click('#steps tr.step:has-text("Big") button.show-state');
      await page.waitForSelector('#step-delta', WAIT);
      expect(await page.$('#steps #step-delta')).toBeNull();
      const reads = stateReads.length;
      await h.http.call('PATCH', `/api/processes/${id}`, { note: 'checked' }); // a live event
      await page.waitForTimeout(800);
      expect(stateReads.length).toBe(reads);
      await shot(page, 'large-state');
    });
  });

  it('asks before aborting: cancelled, nothing happens; accepted, the process is aborted', async () => {
    const id = await idOf(23);
    await withPage(`#/process/${id}`, async (page) => {
      await page.waitForSelector('#process-status:text-is("failed")', WAIT);
      await page.click('button:text-is("Abort")');
      await page.waitForSelector('#confirm-dialog[open]', WAIT);
      expect(await page.textContent('#confirm-text')).toContain(id);
      await shot(page, 'confirm-abort');
      await page.click('#confirm-cancel');
      await page.waitForSelector('#confirm-dialog', { state: 'detached', ...WAIT });
      expect((await h.http.get(`/api/processes/${id}`)).body.status).toBe('failed');
      await page.click('button:text-is("Abort")');
      await page.click('#confirm-ok');
      await page.waitForSelector('#process-status:text-is("aborted")', WAIT);
      await page.waitForFunction(
        () => document.getElementById('announcer')?.textContent?.includes('aborted'),
        undefined,
        WAIT,
      );
    });
  });

  it('shows the settings: engine, workers, queues, schedules, version', async () => {
    await withPage('#/settings', async (page) => {
      await page.waitForSelector('#settings-engine-status:text-is("RUNNING")', WAIT);
      await page.waitForSelector('#queues tbody tr', WAIT);
      expect(await page.textContent('#version')).toMatch(/\d+\.\d+\.\d+/);
      await page.click('#settings-engine-toggle');
      await page.waitForSelector('#confirm-dialog[open]', WAIT);
      await page.keyboard.press('Escape');
      await page.waitForSelector('#confirm-dialog', { state: 'detached', ...WAIT });
      expect((await h.http.get('/api/settings/status')).body.globalLock).toBe(false);
      await shot(page, 'settings');
    });
  });

  it('fits 390 px: nothing overflows the page, tables scroll inside their box', async () => {
    for (const hash of ['#/', `#/process/${await idOf(33)}`, '#/settings']) {
      await withPage(
        hash,
        async (page) => {
          await page.waitForSelector('#processes tbody tr, #steps tbody tr, #queues', WAIT);
          const { scroll, width } = await page.evaluate(() => ({
            scroll: document.documentElement.scrollWidth,
            width: window.innerWidth,
          }));
          expect(scroll, hash).toBeLessThanOrEqual(width);
          const outside = await page.evaluate(() =>
            Array.from(document.querySelectorAll('main *'))
              .filter(
                (e) =>
                  !e.closest('.table-wrap') &&
                  e.getBoundingClientRect().right > window.innerWidth + 1,
              )
              .map((e) => e.tagName + (e.id ? `#${e.id}` : '')),
          );
          expect(outside, hash).toEqual([]);
          await shot(page, `narrow-${hash.split('/')[1] || 'list'}`);
        },
        390,
      );
    }
  });

  it('works by keyboard alone: search, filters keep focus on arrow keys, Escape closes the confirmation, focus is visible', async () => {
    await withPage('#/', async (page) => {
      await page.waitForSelector('#total:has-text("processes")', WAIT);
      for (
        let i = 0;
        i < 40 && (await page.evaluate(() => document.activeElement?.id)) !== 'search';
        i++
      )
        await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('search');
      await page.keyboard.type('carol');
      await page.keyboard.press('Enter');
      // A quarter of the seeded processes: counted up to 10,000.
      await page.waitForSelector('#total:has-text("of more than 10,000 processes")', WAIT);
      await page.focus('#filter-workflow');
      await page.keyboard.press('ArrowDown');
      await page.waitForFunction(() => location.hash.includes('workflow='), undefined, WAIT);
      await page.waitForTimeout(500);
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('filter-workflow');
      const outline = await page.evaluate(
        () => getComputedStyle(document.activeElement!).outlineStyle,
      );
      expect(outline).not.toBe('none');
      // Labels on every field, scope on every header.
      expect(
        await page.$$eval('main input, main select', (xs) =>
          xs.filter((x) => !(x as HTMLInputElement).labels?.length).map((x) => x.id),
        ),
      ).toEqual([]);
      expect(
        await page.$$eval('th', (ths) => ths.filter((t) => !t.getAttribute('scope')).length),
      ).toBe(0);
      await page.focus('#resume-all');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#confirm-dialog[open]', WAIT);
      await page.keyboard.press('Escape');
      await page.waitForSelector('#confirm-dialog', { state: 'detached', ...WAIT });
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('resume-all');
      await shot(page, 'keyboard');
    });
  });
});
