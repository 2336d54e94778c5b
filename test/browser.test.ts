// The live view in a real headless Chromium (Debian's `chromium`, driven by playwright-core).
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, type Chromium } from '../scripts/support/chromium.ts';
import { client } from './support/api.ts';
import { seedProcess } from './support/database.ts';
import { useHarness } from './support/harness.ts';

const WAIT = { timeout: 20_000 };
const TEST_TIMEOUT = 240_000;

const h = useHarness({ executor: 'threadpool' });
let browser: BrowserContext;
let chrome: Chromium | undefined;

beforeAll(async () => {
  chrome = await launchChromium('The browser test');
  browser = chrome.context;
});
afterAll(async () => {
  await chrome?.close();
});

/**
 * Runs `fn` on a fresh page opened at `hash` (of `opts.url`, by default the API without
 * authentication) once `opts.ready` shows, with a marker that a reload would lose. On failure
 * the error carries the page's URL, text and script errors, to see where it stood.
 */
async function withPage(
  hash: string,
  fn: (page: Page, errors: string[]) => Promise<void>,
  opts: { url?: string; ready?: string } = {},
) {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  try {
    await page.goto(`${opts.url ?? h.api.url}/${hash}`);
    await page.waitForSelector(opts.ready ?? '#connection.online', WAIT);
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

/** `errors` without Chromium's log lines of requests the API answered 4xx (422 form_incomplete, 400). */
const scriptErrors = (errors: string[]) =>
  errors.filter((e) => !/^Failed to load resource: .* status of 4\d\d\b/.test(e));

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

      const stored = await client(h.api.url).get(`/api/processes/${id}`);
      expect(stored.body).toMatchObject({ status: 'completed', currentState: { finished: true } });
    });
  });

  it('the process list shows a process started elsewhere and follows it to completed', async () => {
    await withPage('#/?workflow=noop', async (page, errors) => {
      await page.waitForSelector('#processes', WAIT);
      const id = await client(h.api.url).start('noop');
      await page.waitForSelector(
        `#processes tr[data-id="${id}"] .status:text-is("completed")`,
        WAIT,
      );
      expect(await notReloaded(page)).toBe(42);
      expect(errors).toEqual([]);
    });
  });

  it('retries a failed process and aborts a running one with the buttons', async () => {
    const http = client(h.api.url);
    const flaky = await http.start('flaky', { failTimes: 1 });
    await http.waitForStatus(flaky, 'failed', 60_000);
    await withPage(`#/process/${flaky}`, async (page, errors) => {
      await page.waitForSelector('#process-status:text-is("failed")', WAIT);
      await page.click('button:text-is("Retry")');
      await page.click('#confirm-ok');
      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      expect(await page.$('button:text-is("Abort")')).toBeNull();
      expect(errors).toEqual([]);
    });
    const slow = await http.start('slow', { sleepMs: 600_000 });
    await withPage(`#/process/${slow}`, async (page, errors) => {
      await page.waitForSelector('#process-status:text-is("running")', WAIT);
      await page.click('button:text-is("Abort")');
      await page.click('#confirm-ok');
      await page.waitForSelector('#process-status:text-is("aborted")', WAIT);
      await page.waitForSelector('#steps tr.step:has-text("Abort")', WAIT);
      expect(errors).toEqual([]);
    });
    expect((await http.get(`/api/processes/${slow}`)).body.status).toBe('aborted');
  });

  /** The step rows as "name:status[:details]" (the status pill's text). */
  const stepLines = (page: Page) =>
    page.$$eval('#steps tr.step', (rows) =>
      rows.map((r) => {
        const cells = Array.from(r.querySelectorAll('td')).map((td) => td.textContent ?? '');
        const details = r.querySelector('.step-details')?.textContent ?? '';
        return [cells[1], r.querySelector('.status')?.textContent, details]
          .filter(Boolean)
          .join(':');
      }),
    );

  it('skips the failed step of flaky from its page after a confirm naming the step', async () => {
    const http = client(h.api.url);
    const id = await http.start('flaky', { failTimes: 5 });
    await http.waitForStatus(id, 'failed');
    await withPage(`#/process/${id}`, async (page, errors) => {
      await page.waitForSelector('#process-status:text-is("failed")', WAIT);
      // Why it failed, at its row.
      await page.waitForSelector(
        '#steps tr.step[data-kind="error"] .step-details:has-text("attempt 1 of 6 fails on purpose")',
        WAIT,
      );
      await page.waitForSelector('button:text-is("Retry with changed state")', WAIT);

      // Dismissed: nothing is sent.
      await page.click('button:text-is("Skip step")');
      await page.waitForSelector('#confirm-dialog[open]', WAIT);
      expect(await page.textContent('#confirm-text')).toContain('Skip step "Flaky" of flaky');
      await page.click('#confirm-cancel');
      expect((await http.get(`/api/processes/${id}`)).body.status).toBe('failed');

      await page.click('button:text-is("Skip step")');
      await page.click('#confirm-ok');
      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      await page.waitForSelector(
        '#steps tr.step[data-kind="skipped-by-user"] .step-details:text-is("skipped by anonymous")',
        WAIT,
      );
      expect(await stepLines(page)).toEqual([
        'Flaky:failed:Error: attempt 1 of 6 fails on purpose',
        'Flaky:skipped:skipped by anonymous',
      ]);
      expect(await page.$('button:text-is("Skip step"), button:text-is("Retry")')).toBeNull();
      expect(await notReloaded(page)).toBe(42);
      expect(errors).toEqual([]);
    });
    const done = (await http.get(`/api/processes/${id}`)).body;
    expect(done.status).toBe('completed');
    expect(done.currentState.succeededOnAttempt).toBeUndefined();
  });

  it('retries a failed flaky with its state patched in the editor; bad JSON is shown in place', async () => {
    const http = client(h.api.url);
    const id = await http.start('flaky', { failTimes: 5 });
    await http.waitForStatus(id, 'failed');
    await withPage(`#/process/${id}`, async (page, errors) => {
      await page.waitForSelector('#process-status:text-is("failed")', WAIT);
      await page.click('button:text-is("Retry with changed state")');
      await page.waitForSelector('#patch-form', WAIT);
      // Prefilled with the current state.
      const prefilled = JSON.parse(await page.inputValue('#patch-input'));
      expect(prefilled).toEqual((await http.get(`/api/processes/${id}`)).body.currentState);
      expect(prefilled.failTimes).toBe(5);
      const submit = '#patch-form button[type="submit"]';

      await page.fill('#patch-input', '{"failTimes": 0');
      await page.click(submit);
      await page.waitForSelector('#patch-error:has-text("Not valid JSON")', WAIT);
      // From the current state, a key left out cannot be removed by a merge.
      await page.fill('#patch-input', '{}');
      await page.click(submit);
      await page.waitForSelector('#patch-error:has-text("put back failTimes")', WAIT);
      // From an empty object: only the keys to change.
      await page.click('#patch-from-empty');
      expect(await page.inputValue('#patch-input')).toBe('{}');
      expect(await page.textContent('#patch-error')).toBe('');
      await page.click(submit);
      await page.waitForSelector('#patch-error:has-text("at least one key")', WAIT);
      expect((await http.get(`/api/processes/${id}`)).body.status).toBe('failed');

      // Back to the current state, one value changed: the patch is that key alone.
      await page.click('#patch-from-state');
      await page.fill('#patch-input', JSON.stringify({ ...prefilled, failTimes: 0 }, null, 2));
      await page.click(submit);
      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      await page.waitForSelector('#patch-form', { state: 'detached', ...WAIT });
      await page.waitForSelector(
        '#steps tr.step[data-kind="state-patched"] .status:text-is("state patched")',
        WAIT,
      );
      await page.waitForSelector('#steps tr.step:has(.status-success)', WAIT);
      expect(await stepLines(page)).toEqual([
        'Flaky:failed:Error: attempt 1 of 6 fails on purpose',
        'Flaky:state patched:state patched by anonymous before the retry: failTimes',
        'Flaky:success',
      ]);
      await page.waitForFunction(
        () => document.getElementById('current-state')?.textContent?.includes('"failTimes": 0'),
        undefined,
        WAIT,
      );
      expect(await notReloaded(page)).toBe(42);
      expect(errors).toEqual([]);
    });
    expect((await http.get(`/api/processes/${id}`)).body.currentState).toMatchObject({
      failTimes: 0,
      succeededOnAttempt: 2,
    });
  });

  it('starts nightly_validation and follows its three children live to the report; a child links to its parent', async () => {
    await withPage('#/start/nightly_validation', async (page, errors) => {
      // The rooms the page subscribes to: the parent's, and each child's for its status.
      const subscribed: string[] = [];
      page.on('websocket', (ws) =>
        ws.on('framesent', (f) => {
          const m = /^\d+\["subscribe",\{"processId":"([^"]+)"\}\]$/.exec(String(f.payload));
          if (m) subscribed.push(m[1]!);
        }),
      );
      // Seen from the page's first websocket on: opened again, marked again.
      await page.reload();
      await page.waitForSelector('#connection.online', WAIT);
      await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
      await page.waitForSelector('#start-form input[name="delayMs"]', WAIT);
      // Long enough for the page to show the children going on a loaded machine.
      await page.fill('#start-form input[name="delayMs"]', '4000');
      await page.click('#start-form button[type="submit"]');
      await page.waitForSelector('#process-status', WAIT);
      const id = page.url().split('#/process/')[1]!;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);

      // Waiting for its children: how many, instead of a retry time, and no Retry button.
      await page.waitForSelector('#children tr.child:nth-child(3)', WAIT);
      await page.waitForSelector('#process-status:text-is("waiting")', WAIT);
      expect(await page.textContent('#waiting-children')).toMatch(
        /^waiting for [1-3] of 3 child processes$/,
      );
      expect(await page.$('#retry-at')).toBeNull();
      expect(await page.$('button:text-is("Retry now"), button:text-is("Retry")')).toBeNull();
      const children = await page.$$eval('#children tr.child', (rows) =>
        rows.map((r) => ({
          id: r.getAttribute('data-id'),
          href: r.querySelector('a.child-link')?.getAttribute('href'),
          workflow: r.children[1]?.textContent,
          status: r.querySelector('.status')?.textContent,
          step: r.children[3]?.textContent,
        })),
      );
      expect(children).toHaveLength(3);
      for (const c of children) {
        expect(c.href).toBe(`#/process/${c.id}`);
        expect(c).toMatchObject({ workflow: 'validate_device', step: 'Validate devices' });
      }
      // Each child takes 4 s: they are shown going, then completed, without a reload.
      expect(children.some((c) => c.status !== 'completed')).toBe(true);
      await expect
        .poll(() => subscribed, WAIT)
        .toEqual(expect.arrayContaining(children.map((c) => c.id)));
      await page.waitForFunction(
        () =>
          Array.from(document.querySelectorAll('#children tr.child .status')).filter(
            (s) => s.textContent === 'completed',
          ).length === 3,
        undefined,
        WAIT,
      );
      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      expect(await page.$('#waiting-children')).toBeNull();
      await page.waitForSelector(
        '#children-box h2:text-is("Child processes (3 of 3 completed)")',
        WAIT,
      );
      await page.waitForFunction(
        () => document.getElementById('current-state')?.textContent?.includes('"checked": 3'),
        undefined,
        WAIT,
      );
      const report = (await client(h.api.url).get(`/api/processes/${id}`)).body.currentState;
      expect(report.failures.map((f: { device: string }) => f.device).sort()).toEqual([
        'leaf-2',
        'spine-1',
      ]);
      for (const f of report.failures as { process: string }[]) {
        expect(children.map((c) => c.id)).toContain(f.process);
      }

      // A child, and back to its parent by its link.
      const child = children[0]!.id!;
      await page.click(`#children tr.child[data-id="${child}"] a.child-link`);
      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      expect(page.url()).toContain(`#/process/${child}`);
      await page.waitForSelector(`#parent-link:text-is("nightly_validation ${id}")`, WAIT);
      expect(await page.$('#children')).toBeNull();
      await page.click('#parent-link');
      await page.waitForSelector(`#children tr.child[data-id="${child}"]`, WAIT);
      expect(page.url()).toContain(`#/process/${id}`);
      expect(await page.$('#parent-link')).toBeNull();
      expect(await notReloaded(page)).toBe(42);
      expect(errors).toEqual([]);
    });
  });

  it('a sleeping process shows when it wakes and wakes now on the button; the version shows when set', async () => {
    const http = client(h.api.url);
    const id = await http.start('sleep_demo', { seconds: 600 });
    await http.waitForStatus(id, 'waiting');
    await withPage(`#/process/${id}`, async (page, errors) => {
      await page.waitForSelector('#process-status:text-is("waiting")', WAIT);
      expect(await page.textContent('#retry-at')).toMatch(
        /^wakes at \d{1,2}:\d{2}:\d{2}\D* \(in 10 min\)$/,
      );
      expect(await page.$('#workflow-version')).toBeNull();
      await page.click('button:text-is("Wake now")');
      await page.click('#confirm-ok');
      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      expect(await page.$('#retry-at')).toBeNull();
      expect(errors).toEqual([]);
    });
    await h.db.pool.query(
      `UPDATE orchestrator.processes SET workflow_version = '3' WHERE id = $1`,
      [id],
    );
    await withPage(`#/process/${id}`, async (page) => {
      await page.waitForSelector('#workflow-version:text-is("version 3")', WAIT);
    });
  });

  it('pauses and resumes the engine from the header; another page follows', async () => {
    const other = await browser.newPage();
    try {
      await other.goto(`${h.api.url}/`);
      await other.waitForSelector('#engine-status:text-is("RUNNING")', WAIT);
      await withPage('#/', async (page, errors) => {
        await page.waitForSelector('#engine-status:text-is("RUNNING")', WAIT);
        await page.click('#engine-toggle');
        await page.click('#confirm-ok');
        await page.waitForSelector('#engine-status:text-is("PAUSED")', WAIT);
        await other.waitForSelector('#engine-status:text-is("PAUSED")', WAIT);
        expect((await client(h.api.url).post('/api/processes/noop', {})).status).toBe(503);
        await page.click('#engine-toggle:text-is("Resume engine")');
        await page.click('#confirm-ok');
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
      (await h.db.pool.query(`SELECT count(*)::int AS n FROM orchestrator.processes`)).rows[0].n;
    const before = await count();
    await withPage('#/start/slow', async (page) => {
      await page.waitForSelector('#start-form input[name="sleepMs"]', WAIT);
      await page.fill('#start-form input[name="sleepMs"]', '-5');
      // The browser's own constraint check would stop the submit; bypass it to reach the API.
      await page.$eval('#start-form', (f) => ((f as HTMLFormElement).noValidate = true));
      await page.click('#start-form button[type="submit"]');
      // At the field it names, not only in the banner.
      await page.waitForSelector(
        '#start-form [data-field="sleepMs"].invalid .field-error:has-text("Too small")',
        WAIT,
      );
      await page.waitForSelector('#start-error:has-text("Invalid input")', WAIT);
      expect(page.url()).toContain('#/start/slow');
      expect(await count()).toBe(before);
    });
  });

  it('starts provision_port page by page, shows its group and the Confirm form built from state', async () => {
    await withPage('#/start/provision_port', async (page, errors) => {
      const form = '#start-form';
      await page.waitForSelector(`${form} .page-indicator:text-is("Page 1 of 2")`, WAIT);
      expect(await page.textContent('#start-steps')).toContain(
        'Configure (Reserve port, Apply config)',
      );
      expect(await page.$(`${form} button.back`).then((b) => b?.isVisible())).toBe(false);
      await page.selectOption(`${form} select[name="device"]`, '"leaf-2"');
      await page.click(`${form} button[type="submit"]:text-is("Next")`);

      // Page 2 comes from the API's 422, built from page 1: leaf-2's ports.
      await page.waitForSelector(`${form} .page-indicator:text-is("Page 2 of 2")`, WAIT);
      const ports = await page.$$eval(`${form} select[name="port"] option`, (os) =>
        os.map((o) => o.textContent),
      );
      expect(ports).toEqual(['Ethernet1', 'Ethernet2']);
      // A port the device lacks (as a stale page would send): the error shows at the field.
      await page.$eval(`${form} select[name="port"] option`, (o) => {
        (o as HTMLOptionElement).value = JSON.stringify('Ethernet9');
      });
      await page.selectOption(`${form} select[name="port"]`, { index: 0 });
      await page.click(`${form} button[type="submit"]:text-is("Start")`);
      await page.waitForSelector(
        `${form} [data-field="port"].invalid .field-error:has-text("Invalid option")`,
        WAIT,
      );
      expect(page.url()).toContain('#/start/provision_port');

      // Back keeps page 1's answer; Next rebuilds page 2.
      await page.click(`${form} button.back`);
      await page.waitForSelector(`${form} .page-indicator:text-is("Page 1 of 2")`, WAIT);
      expect(
        await page.$eval(`${form} select[name="device"]`, (s) => (s as HTMLSelectElement).value),
      ).toBe('"leaf-2"');
      await page.click(`${form} button[type="submit"]:text-is("Next")`);
      await page.waitForSelector(`${form} .page-indicator:text-is("Page 2 of 2")`, WAIT);
      expect(await page.$(`${form} .field-error:not([hidden])`)).toBeNull();
      await page.selectOption(`${form} select[name="port"]`, '"Ethernet2"');
      await page.click(`${form} button[type="submit"]:text-is("Start")`);

      await page.waitForSelector('#process-status:text-is("suspended")', WAIT);
      const id = page.url().split('#/process/')[1]!;
      await page.waitForSelector('#steps tr.group-head[data-group="Configure"]', WAIT);
      const rows = await page.$$eval('#steps tbody tr', (trs) =>
        trs.map((tr) =>
          tr.classList.contains('group-head')
            ? `[${tr.textContent}]`
            : `${tr.classList.contains('in-group') ? '  ' : ''}${tr.children[1]?.textContent}`,
        ),
      );
      expect(rows).toEqual(['[Configure]', '  Reserve port', '  Apply config', 'Confirm']);

      // The workflow holds its device (lockKeys) while it goes on.
      await page.waitForSelector('#locks .locks-held .lock-key:text-is("device:leaf-2")', WAIT);
      expect(await page.textContent('#locks .locks-waiting')).toBe('none');

      // The Confirm form shows the device and port already chosen as values, not inputs.
      const resume = '#resume-form';
      await page.waitForSelector(`${resume} input[name="confirmed"]`, WAIT);
      expect(await page.textContent(`${resume} [data-value-for="device"]`)).toBe('leaf-2');
      expect(await page.textContent(`${resume} [data-value-for="port"]`)).toBe('Ethernet2');
      expect(await page.$(`${resume} [name="device"], ${resume} [name="port"]`)).toBeNull();
      await page.check(`${resume} input[name="confirmed"]`);
      await page.click(`${resume} button[type="submit"]`);
      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      await page.waitForSelector('#resume-form', { state: 'detached', ...WAIT });
      expect(await notReloaded(page)).toBe(42);
      expect(scriptErrors(errors)).toEqual([]);

      const stored = (await client(h.api.url).get(`/api/processes/${id}`)).body;
      expect(stored.currentState).toMatchObject({
        device: 'leaf-2',
        port: 'Ethernet2',
        reserved: 'leaf-2:Ethernet2',
        confirmed: true,
      });
    });
  });

  it('shows a waiting process with its retry time, then completed without a reload', async () => {
    await withPage('#/start/retry_demo', async (page, errors) => {
      await page.waitForSelector('#start-form input[name="failTimes"]', WAIT);
      expect(await page.$('#start-form .page-indicator:visible')).toBeNull();
      await page.fill('#start-form input[name="failTimes"]', '1');
      await page.fill('#start-form input[name="backoffSeconds"]', '3');
      await page.click('#start-form button[type="submit"]');

      await page.waitForSelector('#process-status:text-is("waiting")', WAIT);
      const retry = await page.textContent('#retry-at');
      expect(retry).toMatch(/^retry at \d{1,2}:\d{2}:\d{2}\D* \((in \d s|now)\)$/);
      expect(await page.$('button:text-is("Retry now")')).not.toBeNull();
      const id = page.url().split('#/process/')[1]!;

      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      expect(await page.$('#retry-at')).toBeNull();
      await page.waitForSelector('#steps tr.step:has(.status-success)', WAIT);
      const statuses = await page.$$eval('#steps tr.step .status', (ss) =>
        ss.map((s) => s.textContent),
      );
      expect(statuses).toEqual(['waiting', 'success']);
      expect(await notReloaded(page)).toBe(42);
      expect(errors).toEqual([]);
      const stored = (await client(h.api.url).get(`/api/processes/${id}`)).body;
      expect(stored.currentState.answeredOnAttempt).toBe(2);
    });
  });

  it('shows the callback URL and live progress of a process awaiting its callback', async () => {
    await withPage('#/start/callback_demo', async (page, errors) => {
      await page.waitForSelector('#start-form input[name="timeoutSeconds"]', WAIT);
      await page.click('#start-form button[type="submit"]');
      await page.waitForSelector('#process-status:text-is("awaiting_callback")', WAIT);
      const id = page.url().split('#/process/')[1]!;
      await page.waitForSelector('#callback-url', WAIT);
      const url = (await page.textContent('#callback-url'))!;
      expect(url).toMatch(new RegExp(`/api/processes/${id}/callback/[A-Za-z0-9_-]{43}$`));
      expect(await page.textContent('#callback-expires')).toMatch(/\((in \d+ (s|min)|now)\)/);
      expect(await page.$('#callback-progress')).toBeNull();

      const post = (path: string, body: unknown) =>
        fetch(path, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      expect((await post(`${url}/progress`, { percent: 40, step: 'copying' })).status).toBe(204);
      await page.waitForSelector('#callback-progress .progress-percent:text-is("40%")', WAIT);
      expect(await page.textContent('#callback-progress .progress-json')).toContain('copying');
      expect((await post(`${url}/progress`, { percent: 75 })).status).toBe(204);
      await page.waitForSelector('#callback-progress .progress-percent:text-is("75%")', WAIT);
      expect(await page.$('#callback-progress .progress-json')).toBeNull();

      expect((await post(url, { job: 17, ok: true })).status).toBe(204);
      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      await page.waitForSelector('#callback-status:text-is("done")', WAIT);
      expect(await page.$('#callback-url')).toBeNull();
      // The state is a tree: its folded nodes are opened (and built) as the poll goes.
      await page.waitForFunction(
        () => {
          const tree = document.getElementById('current-state');
          for (const d of Array.from(tree?.querySelectorAll('details:not([open])') ?? [])) {
            (d as HTMLDetailsElement).open = true;
          }
          return tree?.textContent?.includes('"job": 17');
        },
        undefined,
        WAIT,
      );
      expect(await notReloaded(page)).toBe(42);
      expect(errors).toEqual([]);
    });
  });

  it('adds a schedule from the page, shows a bad cron and a bad input in place, deletes it', async () => {
    const http = client(h.api.url);
    await withPage('#/', async (page, errors) => {
      await page.click('nav a[href="#/schedules"]');
      await page.waitForSelector('#schedule-form', WAIT);
      // The built-in tasks' schedules are listed, each with its next run.
      await page.waitForSelector('#schedules tr[data-name="task_clean_up_tasks"] .next-run', WAIT);
      const form = '#schedule-form';
      await page.fill('#schedule-name', 'browser-nightly');
      await page.selectOption('#schedule-workflow', 'flaky');
      await page.waitForSelector(`${form} input[name="failTimes"]`, WAIT);
      await page.fill(`${form} input[name="failTimes"]`, '0');
      await page.fill('#schedule-cron', 'every minute');
      await page.click(`${form} button[type="submit"]`);
      await page.waitForSelector(
        `${form} [data-field="cron"].invalid .field-error:has-text('"every minute"')`,
        WAIT,
      );
      await page.waitForSelector('#schedule-error:has-text("invalid_schedule")', WAIT);

      // An input the start form refuses: at the input's field.
      await page.fill('#schedule-cron', '0 3 * * *');
      await page.fill(`${form} input[name="failTimes"]`, '-1');
      await page.$eval(form, (f) => ((f as HTMLFormElement).noValidate = true));
      await page.click(`${form} button[type="submit"]`);
      await page.waitForSelector(
        `${form} .schedule-input [data-field="failTimes"].invalid .field-error:has-text("Too small")`,
        WAIT,
      );
      await page.waitForSelector('#schedule-error:has-text("validation_error")', WAIT);
      expect(await page.$(`${form} [data-field="cron"].invalid`)).toBeNull();
      expect(await page.$('#schedules tr[data-name="browser-nightly"]')).toBeNull();

      await page.fill(`${form} input[name="failTimes"]`, '0');
      await page.fill('#schedule-timezone', 'Europe/Amsterdam');
      await page.uncheck('#schedule-overlap');
      await page.click(`${form} button[type="submit"]`);
      const row = '#schedules tr[data-name="browser-nightly"]';
      await page.waitForSelector(`${row} .next-run`, WAIT);
      await page.waitForSelector(
        '#schedule-saved:has-text("Added schedule browser-nightly")',
        WAIT,
      );
      expect(await page.$(`${form} .field-error:not([hidden])`)).toBeNull();
      expect(await page.textContent('#schedule-error')).toBe('');
      const cells = await page.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));
      expect(cells.slice(0, 6)).toEqual([
        'browser-nightly',
        'flaky',
        '0 3 * * *',
        'Europe/Amsterdam',
        'no',
        '{"failTimes":0}',
      ]);
      // Local time, and how far off: a daily run is at most a day away.
      expect(cells[6]).toMatch(/^\S.* \(in \d+ (s|min|h)\)$/);
      const stored = (await http.get('/api/schedules')).body.find(
        (s: { name: string }) => s.name === 'browser-nightly',
      );
      expect(stored).toMatchObject({
        workflow: 'flaky',
        cron: '0 3 * * *',
        timezone: 'Europe/Amsterdam',
        input: { failTimes: 0 },
        overlap: false,
      });
      expect(await page.getAttribute(`${row} .next-run`, 'data-at')).toBe(stored.nextRunAt);

      // Delete, after the confirmation: cancelled first (nothing deleted), then accepted.
      await page.click(`${row} button.schedule-delete`);
      await page.waitForSelector('#confirm-dialog', WAIT);
      expect(await page.textContent('#confirm-title')).toBe('Delete schedule browser-nightly?');
      expect(await page.textContent('#confirm-text')).toContain('flaky');
      await page.click('#confirm-cancel');
      await page.waitForSelector('#confirm-dialog', { state: 'detached', ...WAIT });
      expect(await page.$(row)).not.toBeNull();
      await page.click(`${row} button.schedule-delete`);
      await page.click('#confirm-ok');
      await page.waitForSelector(row, { state: 'detached', ...WAIT });
      expect(
        (await http.get('/api/schedules')).body.some(
          (s: { name: string }) => s.name === 'browser-nightly',
        ),
      ).toBe(false);
      expect(await notReloaded(page)).toBe(42);
      expect(scriptErrors(errors)).toEqual([]);
    });
  });

  it('resumes all failed tasks from the list and shows the count; a concurrent one shows its 409', async () => {
    // A task stopped at its first step, set up directly (no shipped task fails).
    const id = await seedProcess(h.db.pool, {
      workflowName: 'noop_task',
      isTask: true,
      target: 'system',
    });
    await h.db.pool.query(
      `WITH p AS (UPDATE orchestrator.processes SET status = 'failed', last_step = 'One'
                   WHERE id = $1 RETURNING id)
       INSERT INTO orchestrator.process_steps (process_id, step_index, name, status, state, started_at)
       SELECT id, 0, 'One', 'failed', '{}', now() FROM p`,
      [id],
    );
    await withPage('#/?workflow=noop_task', async (page, errors) => {
      const status = `#processes tr[data-id="${id}"] .status`;
      await page.waitForSelector(`${status}:text-is("failed")`, WAIT);
      const lock = `hashtext('orchestrator.resume-all')`;
      const holder = await h.db.pool.connect();
      try {
        await holder.query(`SELECT pg_advisory_lock(${lock})`);
        await page.click('#resume-all');
        await page.click('#confirm-ok');
        await page.waitForSelector('#resume-all-result.error:has-text("already_running")', WAIT);
      } finally {
        await holder.query(`SELECT pg_advisory_unlock(${lock})`);
        holder.release();
      }
      expect(await page.textContent(`${status}`)).toBe('failed');
      await page.click('#resume-all');
      await page.click('#confirm-ok');
      await page.waitForSelector('#resume-all-result:text-is("Resumed 1 task")', WAIT);
      await page.waitForSelector(`${status}:text-is("completed")`, WAIT);
      expect(await notReloaded(page)).toBe(42);
      expect(scriptErrors(errors)).toEqual([]);
    });
  });

  it('deletes a completed task from its page; a running one shows the 409; a workflow has no delete', async () => {
    const http = client(h.api.url);
    const done = await http.start('noop_task');
    await http.waitForStatus(done, 'completed');
    await withPage(`#/process/${done}`, async (page, errors) => {
      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      await page.click('button:text-is("Delete")');
      await page.click('#confirm-ok');
      await page.waitForSelector('#processes', WAIT);
      expect(page.url()).toMatch(/#\/$/);
      expect(await page.$(`#processes tr[data-id="${done}"]`)).toBeNull();
      expect(errors).toEqual([]);
    });
    expect((await http.get(`/api/processes/${done}`)).status).toBe(404);

    // Shown stopped, then running elsewhere before the click (no event for that change here).
    const busy = await seedProcess(h.db.pool, {
      workflowName: 'noop_task',
      isTask: true,
      target: 'system',
    });
    await h.db.pool.query(`UPDATE orchestrator.processes SET status = 'failed' WHERE id = $1`, [
      busy,
    ]);
    await withPage(`#/process/${busy}`, async (page, errors) => {
      await page.waitForSelector('#process-status:text-is("failed")', WAIT);
      await h.db.pool.query(
        `UPDATE orchestrator.processes SET status = 'running', lease_token = gen_random_uuid(),
                lease_owner = 'elsewhere', lease_expires_at = now() + interval '1 hour'
          WHERE id = $1`,
        [busy],
      );
      await page.click('button:text-is("Delete")');
      await page.click('#confirm-ok');
      await page.waitForSelector('#action-error:has-text("process_running")', WAIT);
      expect(page.url()).toContain(`#/process/${busy}`);
      expect((await http.put(`/api/processes/${busy}/abort`)).status).toBe(204);
      await page.waitForSelector('#process-status:text-is("aborted")', WAIT);
      expect(scriptErrors(errors)).toEqual([]);
    });

    const wf = await http.start('noop');
    await http.waitForStatus(wf, 'completed');
    await withPage(`#/process/${wf}`, async (page) => {
      await page.waitForSelector('#process-status:text-is("completed")', WAIT);
      await page.waitForSelector('#note-box', WAIT);
      expect(await page.$('button:text-is("Delete")')).toBeNull();
    });
  });

  it('edits, saves and clears a note; another open page follows', async () => {
    const http = client(h.api.url);
    const id = await http.start('noop');
    await http.waitForStatus(id, 'completed');
    const other = await browser.newPage();
    try {
      await other.goto(`${h.api.url}/#/process/${id}`);
      await other.waitForSelector('#connection.online', WAIT);
      await other.waitForSelector('#note-text:text-is("No note.")', WAIT);
      await withPage(`#/process/${id}`, async (page, errors) => {
        await page.waitForSelector('#note-text:text-is("No note.")', WAIT);
        await page.click('#note-edit');
        await page.fill('#note-input', 'checked by Ada\nport is patched');
        await page.click('#note-form button[type="submit"]');
        await page.waitForSelector('#note-text.note:has-text("checked by Ada")', WAIT);
        await other.waitForSelector('#note-text.note:has-text("port is patched")', WAIT);
        expect((await http.get(`/api/processes/${id}`)).body.note).toBe(
          'checked by Ada\nport is patched',
        );

        // Edit starts from the note; Cancel leaves it as it was.
        await page.click('#note-edit');
        expect(await page.inputValue('#note-input')).toBe('checked by Ada\nport is patched');
        await page.fill('#note-input', 'not saved');
        await page.click('#note-cancel');
        await page.waitForSelector('#note-text.note:has-text("checked by Ada")', WAIT);

        await page.click('#note-clear');
        await page.waitForSelector('#note-text:text-is("No note.")', WAIT);
        await other.waitForSelector('#note-text:text-is("No note.")', WAIT);
        expect((await http.get(`/api/processes/${id}`)).body.note).toBeNull();
        expect(await notReloaded(page)).toBe(42);
        expect(errors).toEqual([]);
      });
    } finally {
      await other.close();
    }
  });

  it('pauses while slow runs: PAUSING with the running count, then PAUSED; unpaused it completes', async () => {
    const http = client(h.api.url);
    // Five steps of 3 s: the pause lands before the last one even when the pages open slowly.
    const id = await http.start('slow', { sleepMs: 3000 });
    const other = await browser.newPage();
    try {
      await other.goto(`${h.api.url}/`);
      await other.waitForSelector('#engine-status:text-is("RUNNING")', WAIT);
      await withPage(`#/process/${id}`, async (page, errors) => {
        await page.waitForSelector('#engine-status:text-is("RUNNING")', WAIT);
        expect(await page.isVisible('#engine-running')).toBe(false);
        // Step 1 committed: step 2 has about 1.5 s to go, the time PAUSING lasts.
        await page.waitForSelector('#steps tr.step:has-text("Step 1")', WAIT);
        await page.click('#engine-toggle:text-is("Pause engine")');
        await page.click('#confirm-ok');
        await page.waitForSelector('#engine-status:text-is("PAUSING")', WAIT);
        expect(await page.textContent('#engine-running')).toMatch(/^[1-9]\d* running$/);
        await page.waitForSelector('#engine-status:text-is("PAUSED")', WAIT);
        await page.waitForSelector('#engine-running', { state: 'hidden', ...WAIT });
        await page.waitForSelector('#process-status:text-is("resumed")', WAIT);
        await other.waitForSelector('#engine-status:text-is("PAUSED")', WAIT);
        const stopped = (await http.get(`/api/processes/${id}`)).body;
        expect(stopped.status).toBe('resumed');
        expect(stopped.steps.length).toBeLessThan(5);

        await page.click('#engine-toggle:text-is("Resume engine")');

        await page.click('#confirm-ok');
        await page.waitForSelector('#engine-status:text-is("RUNNING")', WAIT);
        await other.waitForSelector('#engine-status:text-is("RUNNING")', WAIT);
        await page.waitForSelector('#process-status:text-is("completed")', { timeout: 30_000 });
        expect(await notReloaded(page)).toBe(42);
        expect(errors).toEqual([]);
      });
    } finally {
      await other.close();
    }
    const done = (await http.get(`/api/processes/${id}`)).body;
    expect(done.currentState.visited).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('live view with authentication', { timeout: TEST_TIMEOUT }, () => {
  const ALICE = 'alice-token-0123456789';
  // Its own database: its workers do not take the other API's processes.
  const secured = useHarness({ executor: 'threadpool', env: { API_TOKENS: `alice=${ALICE}` } });

  /** The secured API, called as alice (or with `token`). */
  async function call(method: string, path: string, body?: unknown, token = ALICE) {
    const res = await fetch(secured.url + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }
  const stored = (page: Page) =>
    page.evaluate(() => window.sessionStorage.getItem('orchestrator.apiToken'));
  const signIn = async (page: Page, token: string) => {
    await page.fill('#sign-in-token', token);
    await page.click('#sign-in-form button[type="submit"]');
  };

  it('asks for a token, refuses a wrong one, shows the list and live updates with the right one, signs out', async () => {
    await withPage(
      '#/?workflow=noop',
      async (page, errors) => {
        // Neither the list nor the live connection without a token.
        expect(await page.getAttribute('#sign-in-token', 'type')).toBe('password');
        expect(await page.$('#processes')).toBeNull();
        expect(await page.isVisible('#sign-out')).toBe(false);
        expect(await page.textContent('#connection')).toBe('offline');

        await signIn(page, `${ALICE}x`);
        await page.waitForSelector(
          '#sign-in-error:has-text("unauthorized: A valid bearer token is required")',
          WAIT,
        );
        expect(await stored(page)).toBeNull();
        expect(await page.$('#processes')).toBeNull();

        const sent = page.waitForRequest((r) => r.url().includes('/api/processes?'), WAIT);
        await signIn(page, ALICE);
        expect((await sent).headers().authorization).toBe(`Bearer ${ALICE}`);
        await page.waitForSelector('#processes', WAIT);
        // The socket connected again, now with the token.
        await page.waitForSelector('#connection.online', WAIT);
        await page.waitForSelector('#signed-in:text-is("signed in")', WAIT);
        expect(await page.isVisible('#sign-out')).toBe(true);
        expect(await page.$('#sign-in')).toBeNull();
        expect(await stored(page)).toBe(ALICE);
        expect(page.url()).toContain('#/?workflow=noop');

        // Live updates: a process started elsewhere shows up and completes without a reload.
        const started = await call('POST', '/api/processes/noop', {});
        expect(started.status).toBe(201);
        await page.waitForSelector(
          `#processes tr[data-id="${started.body.id}"] .status:text-is("completed")`,
          WAIT,
        );

        // Started from the page: recorded as alice's.
        await page.click('nav a[href="#/start"]');
        await page.waitForSelector('#start-form', WAIT);
        await page.selectOption('#start-workflow', 'noop');
        await page.waitForSelector('#start-steps', WAIT);
        await page.click('#start-form button[type="submit"]');
        await page.waitForSelector('#process-status:text-is("completed")', WAIT);
        const id = page.url().split('#/process/')[1]!;
        expect(id).toMatch(/^[0-9a-f-]{36}$/);
        expect((await call('GET', `/api/processes/${id}`)).body).toMatchObject({
          status: 'completed',
          createdBy: 'alice',
        });
        expect(await notReloaded(page)).toBe(42);

        // Sign out: the token is forgotten, the live connection ends, the panel is back.
        await page.click('#sign-out');
        await page.waitForSelector('#sign-in-message:text-is("Signed out.")', WAIT);
        await page.waitForSelector('#connection.offline', WAIT);
        expect(await stored(page)).toBeNull();
        expect(await page.isVisible('#signed-in')).toBe(false);
        expect(await page.isVisible('#sign-out')).toBe(false);
        // Another view asks again: its calls go without the token, the panel stays.
        const refused = page.waitForResponse(
          (r) => r.url().endsWith('/api/workflows') && r.status() === 401,
          WAIT,
        );
        await page.click('nav a[href="#/schedules"]');
        expect((await refused).request().headers().authorization).toBeUndefined();
        await page.waitForSelector('#sign-in-form', WAIT);
        expect(await page.$('#schedules, #view > .error')).toBeNull();
        expect(await notReloaded(page)).toBe(42);
        expect(scriptErrors(errors)).toEqual([]);
      },
      { url: secured.url, ready: '#sign-in-form' },
    );
  });

  it('a token refused later (no longer valid) asks again and forgets it', async () => {
    await withPage(
      '#/',
      async (page, errors) => {
        await signIn(page, ALICE);
        await page.waitForSelector('#connection.online', WAIT);
        await page.waitForSelector('#processes', WAIT);
        // As a token that expired would: the next call is refused.
        await page.evaluate(() =>
          window.sessionStorage.setItem('orchestrator.apiToken', 'expired-token-0123456789'),
        );
        await page.click('nav a[href="#/schedules"]');
        await page.waitForSelector(
          '#sign-in-message:text-is("The token was refused: sign in again.")',
          WAIT,
        );
        expect(await stored(page)).toBeNull();
        expect(await page.isVisible('#sign-out')).toBe(false);
        // Its live connection ends too.
        await page.waitForSelector('#connection.offline', WAIT);
        // Signed in again, the view asked for is shown.
        await signIn(page, ALICE);
        await page.waitForSelector('#schedules', WAIT);
        await page.waitForSelector('#connection.online', WAIT);
        expect(page.url()).toContain('#/schedules');
        expect(await notReloaded(page)).toBe(42);
        expect(scriptErrors(errors)).toEqual([]);
      },
      { url: secured.url, ready: '#sign-in-form' },
    );
  });

  // Last: the failure limit holds for a minute, for the failing token and this address; a valid
  // token still passes.
  it('shows the 429 once too many authentications failed, and still takes a valid token', async () => {
    let status = 0;
    for (let i = 0; i < 30 && status !== 429; i++)
      status = (await call('GET', '/api/workflows', undefined, 'wrong-token-0123456789')).status;
    expect(status).toBe(429);
    await withPage(
      '#/',
      async (page) => {
        await signIn(page, 'wrong-token-0123456789');
        await page.waitForSelector(
          '#sign-in-error:has-text("too_many_requests: Too many failed authentications; try again later")',
          WAIT,
        );
        expect(await stored(page)).toBeNull();
        // Others' failures from this address do not lock a valid token out.
        await signIn(page, ALICE);
        await page.waitForSelector('#processes', WAIT);
        await page.waitForSelector('#connection.online', WAIT);
        expect(await stored(page)).toBe(ALICE);
      },
      // The socket's refusal shows the panel (REST calls answer 429, not 401).
      { url: secured.url, ready: '#sign-in-form' },
    );
  });
});
