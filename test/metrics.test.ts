// GET /metrics in Prometheus text format, against a real Postgres.
import { describe, expect, it } from 'vitest';
import { useHarness } from './support/harness.ts';

const h = useHarness({ executor: 'threadpool', env: { METRICS_TOKEN: 'scrape-secret' } });

async function scrape(token = 'scrape-secret') {
  const res = await fetch(`${h.api.url}/metrics`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

/** The value of one sample, or undefined. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('/metrics', () => {
  it('needs the metrics token when one is configured', async () => {
    expect((await scrape('wrong')).status).toBe(401);
    const res = await fetch(`${h.api.url}/metrics`);
    expect(res.status).toBe(401);
    expect((await res.json()).error.code).toBe('unauthorized');
  });

  it('reports steps, failures, retries, processes, engine status, queues and workers', async () => {
    const noop = await h.http.start('noop');
    await h.http.waitForStatus(noop, 'completed');
    const flaky = await h.http.start('flaky', { failTimes: 1 });
    await h.http.waitForStatus(flaky, 'failed');
    const retry = await h.http.start('retry_demo', { failTimes: 1, backoffSeconds: 0.1 });
    await h.http.waitForStatus(retry, 'completed');
    const hello = await h.http.start('hello', { name: 'Ada' });
    await h.http.waitForStatus(hello, 'suspended');

    const m = await scrape();
    expect(m.status).toBe(200);
    expect(m.type).toMatch(/^text\/plain/);
    const t = m.text;
    expect(
      sample(t, 'wfo_step_duration_seconds_count', {
        workflow: 'noop',
        step: 'One',
        status: 'success',
      }),
    ).toBe(1);
    expect(sample(t, 'wfo_step_failures_total', { workflow: 'flaky', step: 'Flaky' })).toBe(1);
    expect(
      sample(t, 'wfo_step_retries_total', { workflow: 'retry_demo', step: 'Call device' }),
    ).toBe(1);
    expect(
      sample(t, 'wfo_step_failures_total', { workflow: 'retry_demo', step: 'Call device' }),
    ).toBe(1);
    expect(
      sample(t, 'wfo_process_count', {
        workflow_name: 'flaky',
        last_status: 'failed',
        is_task: 'false',
      }),
    ).toBe(1);
    expect(
      sample(t, 'wfo_process_count', { workflow_name: 'hello', last_status: 'suspended' }),
    ).toBe(1);
    expect(sample(t, 'wfo_processes', { status: 'completed', is_task: 'false' })).toBe(2);
    expect(sample(t, 'wfo_engine_status', { engine_status: 'RUNNING' })).toBe(1);
    expect(sample(t, 'wfo_engine_status', { engine_status: 'PAUSED' })).toBe(0);
    expect(sample(t, 'wfo_active_process_count')).toBe(0);
    expect(sample(t, 'wfo_workers_online')).toBe(0);
    expect(sample(t, 'wfo_live_clients')).toBe(0);
    expect(t).toContain('# TYPE wfo_queue_jobs gauge');
    expect(t).toContain('# TYPE wfo_queue_oldest_job_age_seconds gauge');
    expect(t).toContain('# TYPE wfo_lease_expiries_recovered_total counter');
    expect(t).toMatch(/^process_cpu_user_seconds_total /m);

    await h.http.put('/api/settings/status', { globalLock: true });
    expect(sample((await scrape()).text, 'wfo_engine_status', { engine_status: 'PAUSED' })).toBe(1);
    await h.http.put('/api/settings/status', { globalLock: false });
  });
});
