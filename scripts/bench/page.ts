// Item 10, the operator page under load: the process list (`#/`) open in headless Chromium
// (1280×900) while a burst of N `noop` processes is started over REST and drained by the
// threadpool API; the page's frame intervals (a requestAnimationFrame loop) and its long tasks
// (PerformanceObserver 'longtask') during the burst, against 5 s of idle just before it. Then the
// same once with a process's page (`#/process/<id>`, a `slow` process sleeping in its first step)
// open instead. Chromium, the API and Postgres share the machine's cores, as they would on an
// operator's laptop running everything. Headless Chromium draws at 60 Hz: a frame interval is
// 16.7 ms when nothing is late.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { startMany, startProcess, waitAllCompleted, wallClockMs } from './client.ts';
import type { Figure } from './report.ts';
import { quantile, summarize } from './stats.ts';
import { root, type Api, type BenchDatabase } from './system.ts';
import { POST_CONCURRENCY } from './throughput.ts';

const VIEWPORT = { width: 1280, height: 900 };
/** Idle measured before each burst: the baseline. */
const IDLE_MS = 5_000;
/** Measured on after the burst's last process completed (the list's last reloads). */
const AFTER_MS = 2_000;
/** Processes on the list before measuring (also the API's warm-up). */
const SEED = 50;
const WAIT = { timeout: 30_000 };

/**
 * The workflows the API runs for this item: the bench's `noop` and the project's `slow` (for a
 * process that stays running while its page is open), each re-exported from a temporary folder
 * given as WORKFLOWS_DIR. `remove()` deletes the folder.
 */
export function pageWorkflows(): { dir: string; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orchestrator-bench-page-'));
  fs.chmodSync(dir, 0o755);
  const reexport = (file: string) => `export { default } from ${JSON.stringify(file)};\n`;
  fs.writeFileSync(
    path.join(dir, 'noop.ts'),
    reexport(path.join(root, 'scripts', 'bench', 'workflows', 'noop.ts')),
  );
  fs.writeFileSync(path.join(dir, 'slow.ts'), reexport(path.join(root, 'workflows', 'slow.ts')));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Frame intervals of one window, in ms. */
export interface FrameStats {
  frames: number;
  p50: number;
  p95: number;
  max: number;
}

export interface PageRun {
  /** `none`: the burst alone, no page open (only burstSeconds is measured). */
  view: 'list' | 'process' | 'none';
  idle: FrameStats;
  burst: FrameStats;
  /** Long tasks that started in the window; undefined when the browser has no 'longtask'. */
  idleLongTasks?: { count: number; totalMs: number };
  burstLongTasks?: { count: number; totalMs: number };
  /** First POST → last process completed (Postgres's clock). */
  burstSeconds: number;
  /** The page's own requests to the API during the burst (e.g. the list reloading). */
  burstRequests?: number;
}

interface Recorded {
  frames: number[];
  longTasks: [number, number][] | undefined;
}

/** Installed in the page: every frame's start time, and the long tasks. */
function installRecorder(): void {
  const w = window as unknown as { __bench: Recorded };
  const rec: Recorded = { frames: [], longTasks: undefined };
  w.__bench = rec;
  const loop = (t: number) => {
    rec.frames.push(t);
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  try {
    const seen: [number, number][] = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) seen.push([e.startTime, e.duration]);
    }).observe({ type: 'longtask' });
    rec.longTasks = seen;
  } catch {
    // No long task timing in this browser.
  }
}

function frameStats(frames: readonly number[], from: number, to: number): FrameStats {
  const intervals: number[] = [];
  for (let i = 1; i < frames.length; i++) {
    const t = frames[i]!;
    if (t > from && t <= to) intervals.push(t - frames[i - 1]!);
  }
  return {
    frames: intervals.length,
    p50: quantile(intervals, 0.5),
    p95: quantile(intervals, 0.95),
    max: intervals.length ? Math.max(...intervals) : Number.NaN,
  };
}

function longTaskStats(
  tasks: Recorded['longTasks'],
  from: number,
  to: number,
): { count: number; totalMs: number } | undefined {
  if (!tasks) return undefined;
  const inWindow = tasks.filter(([start]) => start >= from && start < to);
  return { count: inWindow.length, totalMs: inWindow.reduce((s, [, d]) => s + d, 0) };
}

const pageNow = (page: Page) => page.evaluate(() => performance.now());

/** One measurement: the page at `hash` idle for IDLE_MS, then a burst of `burst` noop processes. */
async function measureOnce(
  browser: BrowserContext,
  api: Api,
  client: pg.Client,
  o: { view: PageRun['view']; hash: string; ready: string; burst: number; completedBefore: number },
): Promise<PageRun> {
  const page = await browser.newPage();
  await page.setViewportSize(VIEWPORT);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  const requests = { counting: false, n: 0 };
  page.on('request', (req) => {
    if (requests.counting && new URL(req.url()).pathname.startsWith('/api/')) requests.n++;
  });
  try {
    await page.goto(`${api.url}/${o.hash}`);
    await page.waitForSelector('#connection.online', WAIT);
    await page.waitForSelector(o.ready, WAIT);
    await page.evaluate(installRecorder);
    await sleep(500);
    const idleFrom = await pageNow(page);
    await sleep(IDLE_MS);
    const burstFrom = await pageNow(page);
    const started = wallClockMs();
    requests.counting = true;
    await startMany(api.url, 'noop', {}, o.burst, POST_CONCURRENCY, AbortSignal.timeout(300_000));
    const last = await waitAllCompleted(client, o.completedBefore + o.burst, 300_000);
    await sleep(AFTER_MS);
    const burstTo = await pageNow(page);
    requests.counting = false;
    const rec = await page.evaluate(() => (window as unknown as { __bench: Recorded }).__bench);
    if (errors.length) throw new Error(`the page failed: ${errors.join('; ')}`);
    const idleLongTasks = longTaskStats(rec.longTasks, idleFrom, burstFrom);
    const burstLongTasks = longTaskStats(rec.longTasks, burstFrom, burstTo);
    return {
      view: o.view,
      idle: frameStats(rec.frames, idleFrom, burstFrom),
      burst: frameStats(rec.frames, burstFrom, burstTo),
      ...(idleLongTasks ? { idleLongTasks } : {}),
      ...(burstLongTasks ? { burstLongTasks } : {}),
      burstSeconds: (last - started) / 1000,
      burstRequests: requests.n,
    };
  } finally {
    await page.close();
  }
}

/**
 * `runs` measurements with the process list open, the burst once with no page open, then one
 * measurement with a running `slow` process's page open; each on an emptied database with SEED completed noop processes listed. The API must run
 * pageWorkflows().
 */
export async function measurePage(
  db: BenchDatabase,
  api: Api,
  opts: { burst: number; runs: number; log: (msg: string) => void },
): Promise<PageRun[]> {
  const chrome = await launchChromium('The page bench');
  const browser = chrome.context;
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const runs: PageRun[] = [];
  try {
    const seed = async () => {
      await db.reset(client);
      await startMany(api.url, 'noop', {}, SEED, POST_CONCURRENCY, AbortSignal.timeout(60_000));
      await waitAllCompleted(client, SEED, 60_000);
    };
    const report = (r: PageRun) => {
      const f = (s: FrameStats) =>
        `p50 ${s.p50.toFixed(1)} / p95 ${s.p95.toFixed(1)} / max ${s.max.toFixed(0)} ms (${s.frames} frames)`;
      const lt = r.burstLongTasks
        ? `, ${r.burstLongTasks.count} long tasks (${r.burstLongTasks.totalMs.toFixed(0)} ms)`
        : '';
      opts.log(
        `   ${r.view}: burst ${r.burstSeconds.toFixed(1)} s, ${r.burstRequests} API requests of the page, frames ${f(r.burst)}${lt}; idle ${f(r.idle)}`,
      );
    };
    for (let run = 0; run < opts.runs; run++) {
      await seed();
      const r = await measureOnce(browser, api, client, {
        view: 'list',
        hash: '#/',
        ready: '#processes tbody tr',
        burst: opts.burst,
        completedBefore: SEED,
      });
      report(r);
      runs.push(r);
    }
    // The burst with no page open: what the page's live updates cost the burst itself.
    await seed();
    const started = wallClockMs();
    await startMany(
      api.url,
      'noop',
      {},
      opts.burst,
      POST_CONCURRENCY,
      AbortSignal.timeout(300_000),
    );
    const last = await waitAllCompleted(client, SEED + opts.burst, 300_000);
    const none = { frames: 0, p50: Number.NaN, p95: Number.NaN, max: Number.NaN };
    runs.push({ view: 'none', idle: none, burst: none, burstSeconds: (last - started) / 1000 });
    opts.log(`   no page: burst ${runs.at(-1)!.burstSeconds.toFixed(1)} s`);
    await seed();
    const slow = await startProcess(api.url, 'slow', { sleepMs: 600_000 });
    try {
      const r = await measureOnce(browser, api, client, {
        view: 'process',
        hash: `#/process/${slow}`,
        ready: '#process-status.status-running',
        burst: opts.burst,
        completedBefore: SEED,
      });
      report(r);
      runs.push(r);
    } finally {
      await fetch(`${api.url}/api/processes/${slow}/abort`, { method: 'PUT' }).catch(
        () => undefined,
      );
    }
    return runs;
  } finally {
    await client.end();
    await chrome.close();
  }
}

type Row = Pick<Figure, 'item' | 'label' | 'unit'>;

/** Item 10's rows of one view, in order. */
function pageRows(view: PageRun['view'], burst: number) {
  const n = burst.toLocaleString('en-US');
  const name = view === 'list' ? 'process list #/' : 'a running process #/process/<id>';
  const r = (label: string, unit: string): Row => ({
    item: 10,
    label: `page: ${name}, ${label}`,
    unit,
  });
  return {
    burstP50: r(`${n} noop burst + 2 s: frame interval p50`, 'ms'),
    burstP95: r(`${n} noop burst + 2 s: frame interval p95`, 'ms'),
    burstMax: r(`${n} noop burst + 2 s: frame interval max`, 'ms'),
    p95Ratio: r(`the burst's frame p95 ÷ the idle p95 just before it`, '×'),
    longTasks: r(`${n} noop burst + 2 s: long tasks`, 'tasks'),
    longTotal: r(`${n} noop burst + 2 s: long tasks' total`, 'ms'),
    burstSeconds: r(`the burst: first POST → last of ${n} completed`, 's'),
    idleP50: r(`5 s idle before: frame interval p50`, 'ms'),
    idleP95: r(`5 s idle before: frame interval p95`, 'ms'),
    idleMax: r(`5 s idle before: frame interval max`, 'ms'),
  };
}

/** Item 10's figures from the runs, or every row `missing` why when it could not be measured. */
export function pageFigures(runs: PageRun[] | string, burst: number): Figure[] {
  const n = burst.toLocaleString('en-US');
  const alone: Row = {
    item: 10,
    label: `page: none open, the burst: first POST → last of ${n} completed`,
    unit: 's',
  };
  const figures: Figure[] =
    typeof runs === 'string'
      ? [{ ...alone, missing: runs }]
      : [
          {
            ...alone,
            value: summarize(runs.filter((r) => r.view === 'none').map((r) => r.burstSeconds)),
          },
        ];
  for (const view of ['list', 'process'] as const) {
    const rows = pageRows(view, burst);
    if (typeof runs === 'string') {
      for (const row of Object.values(rows)) figures.push({ ...row, missing: runs });
      continue;
    }
    const mine = runs.filter((r) => r.view === view);
    const of = (f: (r: PageRun) => number) => summarize(mine.map(f));
    const p95 = of((r) => r.burst.p95);
    const noLongTasks = 'no long task timing in this browser';
    const longTasks = mine.every((r) => r.burstLongTasks);
    figures.push(
      { ...rows.burstP50, value: of((r) => r.burst.p50) },
      { ...rows.burstP95, value: p95, target: '≤ 50 ms', met: p95.median <= 50 },
      { ...rows.burstMax, value: of((r) => r.burst.max) },
      { ...rows.p95Ratio, value: of((r) => r.burst.p95 / r.idle.p95) },
      longTasks
        ? { ...rows.longTasks, value: of((r) => r.burstLongTasks!.count) }
        : { ...rows.longTasks, missing: noLongTasks },
      longTasks
        ? { ...rows.longTotal, value: of((r) => r.burstLongTasks!.totalMs) }
        : { ...rows.longTotal, missing: noLongTasks },
      { ...rows.burstSeconds, value: of((r) => r.burstSeconds) },
      { ...rows.idleP50, value: of((r) => r.idle.p50) },
      { ...rows.idleP95, value: of((r) => r.idle.p95) },
      { ...rows.idleMax, value: of((r) => r.idle.max) },
    );
  }
  return figures;
}
