// The live view in a real headless Chromium (Debian's `chromium`, driven by playwright-core).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Orchestrator } from '../src/server.ts';
import { client, startApi } from './support/api.ts';
import { createTestDatabase, type TestDatabase } from './support/database.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const WAIT = { timeout: 20_000 };
const TEST_TIMEOUT = 240_000;

let db: TestDatabase;
let api: Orchestrator;
let browser: BrowserContext;
let userDataDir: string;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `The browser test needs Debian's chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`,
    );
  }
  db = await createTestDatabase();
  api = await startApi(db.url);
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchestrator-chromium-'));
  // A fresh profile per run (the persistent-context API is how playwright takes --user-data-dir).
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});
afterAll(async () => {
  await browser?.close();
  await api?.close();
  await db?.drop();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

/**
 * Runs `fn` on a fresh page opened at `hash`, with a marker that a reload would lose. On failure
 * the error carries the page's URL, text and script errors, to see where it stood.
 */
async function withPage(hash: string, fn: (page: Page, errors: string[]) => Promise<void>) {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  try {
    await page.goto(`${api.url}/${hash}`);
    await page.waitForSelector('#connection.online', WAIT);
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    await fn(page, errors);
  } catch (err) {
    const text = await page.innerText('body').catch(() => '(no body)');
    (err as Error).message +=
      `\n--- page ${page.url()}\n${text.slice(0, 3000)}\n--- errors ${JSON.stringify(errors)}`;
    throw err;
  } finally {
    await page.close();
  }
}

const notReloaded = (page: Page) =>
  page.evaluate(() => (window as unknown as { marker?: number }).marker);

describe('live view in Chromium', { timeout: TEST_TIMEOUT }, () => {
  it('starts hello from the page, sees it suspend, submits the form and sees completed without reloading', async () => {
    await withPage('#/', async (page, errors) => {
      // As a user would: from the list to the start page, then pick the workflow.
      await page.waitForSelector('#processes', WAIT);
      await page.click('nav a[href="#/start"]');
      await page.waitForSelector('#start-form', WAIT);
      await page.selectOption('#start-workflow', 'hello');
      await page.waitForSelector('#start-form input[name="name"]', WAIT);
      await page.fill('#start-form input[name="name"]', 'Ada');
      await page.click('#start-form button[type="submit"]');

      await page.waitForSelector('#process-status:text-is("suspended")', WAIT);
      const id = page.url().split('#/process/')[1];
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      await page.waitForSelector('#resume-form input[name="confirmed"]', WAIT);
      await page.check('#resume-form input[name="confirmed"]');
      await page.click('#resume-form button[type="submit"]');

      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      await page.waitForSelector('#steps tr.step:has-text("Finish")', WAIT);
      const steps = await page.$$eval('#steps tbody tr', (rows) =>
        rows.map((r) =>
          Array.from(r.querySelectorAll('td'))
            .slice(1, 3)
            .map((td) => td.textContent),
        ),
      );
      expect(steps).toEqual([
        ['Greet', 'success'],
        ['Confirm', 'suspend'],
        ['Confirm', 'success'],
        ['Finish', 'success'],
      ]);
      // The state follows with the refetch after the last event.
      await page.waitForFunction(
        () => document.getElementById('current-state')?.textContent?.includes('"finished": true'),
        undefined,
        WAIT,
      );
      expect(await page.textContent('#current-state')).toContain('"greeting": "Hello, Ada!"');
      expect(await notReloaded(page)).toBe(42);
      expect(errors).toEqual([]);

      const stored = await client(api.url).get(`/api/processes/${id}`);
      expect(stored.body).toMatchObject({ status: 'completed', currentState: { finished: true } });
    });
  });

  it('the process list shows a process started elsewhere and follows it to completed', async () => {
    await withPage('#/?workflow=noop', async (page, errors) => {
      await page.waitForSelector('#processes', WAIT);
      const id = await client(api.url).start('noop');
      await page.waitForSelector(
        `#processes tr[data-id="${id}"] .status:text-is("completed")`,
        WAIT,
      );
      expect(await notReloaded(page)).toBe(42);
      expect(errors).toEqual([]);
    });
  });

  it('retries a failed process and aborts a running one with the buttons', async () => {
    const http = client(api.url);
    const flaky = await http.start('flaky', { failTimes: 1 });
    await http.waitForStatus(flaky, 'failed', 60_000);
    await withPage(`#/process/${flaky}`, async (page, errors) => {
      await page.waitForSelector('#process-status:text-is("failed")', WAIT);
      await page.click('button:text-is("Retry")');
      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      expect(await page.$('button:text-is("Abort")')).toBeNull();
      expect(errors).toEqual([]);
    });
    const slow = await http.start('slow', { sleepMs: 600_000 });
    await withPage(`#/process/${slow}`, async (page, errors) => {
      await page.waitForSelector('#process-status:text-is("running")', WAIT);
      await page.click('button:text-is("Abort")');
      await page.waitForSelector('#process-status:text-is("aborted")', WAIT);
      await page.waitForSelector('#steps tr.step:has-text("Abort")', WAIT);
      expect(errors).toEqual([]);
    });
    expect((await http.get(`/api/processes/${slow}`)).body.status).toBe('aborted');
  });

  it('pauses and resumes the engine from the header; another page follows', async () => {
    const other = await browser.newPage();
    try {
      await other.goto(`${api.url}/`);
      await other.waitForSelector('#engine-status:text-is("RUNNING")', WAIT);
      await withPage('#/', async (page, errors) => {
        await page.waitForSelector('#engine-status:text-is("RUNNING")', WAIT);
        await page.click('#engine-toggle');
        await page.waitForSelector('#engine-status:text-is("PAUSED")', WAIT);
        await other.waitForSelector('#engine-status:text-is("PAUSED")', WAIT);
        expect((await client(api.url).post('/api/processes/noop', {})).status).toBe(503);
        await page.click('#engine-toggle:text-is("Resume engine")');
        await page.waitForSelector('#engine-status:text-is("RUNNING")', WAIT);
        await other.waitForSelector('#engine-status:text-is("RUNNING")', WAIT);
        expect(errors).toEqual([]);
      });
    } finally {
      await other.close();
    }
  });

  it('shows the validation errors of a bad start form and starts nothing', async () => {
    const count = async () =>
      (await db.pool.query(`SELECT count(*)::int AS n FROM orchestrator.processes`)).rows[0].n;
    const before = await count();
    await withPage('#/start/slow', async (page) => {
      await page.waitForSelector('#start-form input[name="sleepMs"]', WAIT);
      await page.fill('#start-form input[name="sleepMs"]', '-5');
      // The browser's own constraint check would stop the submit; bypass it to reach the API.
      await page.$eval('#start-form', (f) => ((f as HTMLFormElement).noValidate = true));
      await page.click('#start-form button[type="submit"]');
      await page.waitForSelector('#start-error:has-text("sleepMs")', WAIT);
      expect(page.url()).toContain('#/start/slow');
      expect(await count()).toBe(before);
    });
  });
});
