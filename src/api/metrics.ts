// GET /metrics: Prometheus text format (prom-client). What runs in this process (steps, retries,
// recoveries: src/engine/metrics.ts) plus, read from the database at each scrape, the processes by
// workflow and status, the engine status, queue depths and ages, and the workers online. Optional
// `METRICS_TOKEN`: then only `Authorization: Bearer <token>` may scrape.
import client from 'prom-client';
import { queueDepths, unendedByWorkflow } from '../db/metrics.ts';
import { PROCESS_STATUSES } from '../db/model.ts';
import type { Pool } from '../db/pool.ts';
import { statusCounts } from '../db/process-list.ts';
import { getEngineStatus } from '../db/settings.ts';
import { onlineWorkers } from '../db/workers.ts';
import type { Route } from './route.ts';

const ENGINE_STATES = ['RUNNING', 'PAUSING', 'PAUSED'] as const;

/** Registers the database-backed gauges on `registry`; each reads when scraped. */
function databaseGauges(registry: client.Registry, pool: Pool, liveClients: () => number) {
  new client.Gauge({
    name: 'wfo_process_count',
    help: 'Processes that have not ended (not completed or aborted), by workflow, status and kind',
    labelNames: ['workflow_name', 'last_status', 'is_task'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await unendedByWorkflow(pool))
        this.set(
          { workflow_name: r.workflow, last_status: r.status, is_task: String(r.isTask) },
          r.n,
        );
    },
  });
  new client.Gauge({
    name: 'wfo_processes',
    help: 'All processes by status and kind (exact, from the status counters)',
    labelNames: ['status', 'is_task'] as const,
    registers: [registry],
    async collect() {
      const { processCounts, taskCounts } = await statusCounts(pool);
      for (const status of PROCESS_STATUSES) {
        this.set({ status, is_task: 'false' }, Number(processCounts[status] ?? 0));
        this.set({ status, is_task: 'true' }, Number(taskCounts[status] ?? 0));
      }
    },
  });
  new client.Gauge({
    name: 'wfo_engine_status',
    help: 'The engine status: 1 for the current one of RUNNING, PAUSING, PAUSED',
    labelNames: ['engine_status'] as const,
    registers: [registry],
    async collect() {
      const s = await getEngineStatus(pool);
      for (const e of ENGINE_STATES) this.set({ engine_status: e }, s.engineStatus === e ? 1 : 0);
    },
  });
  new client.Gauge({
    name: 'wfo_active_process_count',
    help: 'Processes whose runner holds a live lease now, on any instance',
    registers: [registry],
    async collect() {
      this.set((await getEngineStatus(pool)).runningProcesses);
    },
  });
  const depths = () => queueDepths(pool);
  new client.Gauge({
    name: 'wfo_queue_jobs',
    help: 'Jobs per queue (worker mode and schedule ticks), waiting (queued) or being run (active)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const q of await depths()) {
        this.set({ queue: q.queue, state: 'queued' }, q.queued);
        this.set({ queue: q.queue, state: 'active' }, q.active);
      }
    },
  });
  new client.Gauge({
    name: 'wfo_queue_oldest_job_age_seconds',
    help: 'Age of the oldest job waiting to be fetched, per queue (0 when none waits)',
    labelNames: ['queue'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const q of await depths()) this.set({ queue: q.queue }, q.oldestSeconds ?? 0);
    },
  });
  new client.Gauge({
    name: 'wfo_workers_online',
    help: 'Worker processes registered and heartbeating',
    registers: [registry],
    async collect() {
      this.set((await onlineWorkers(pool)).length);
    },
  });
  new client.Gauge({
    name: 'wfo_live_clients',
    help: 'Live view (Socket.IO) clients connected to this API instance',
    registers: [registry],
    collect() {
      this.set(liveClients());
    },
  });
}

export const metricsRoute: Route = {
  method: 'get',
  path: '/metrics',
  // `METRICS_TOKEN`, when one is set (checked by the router before the handler).
  auth: 'metricsToken',
  doc: {
    tag: 'Metrics',
    operationId: 'getMetrics',
    summary: 'Prometheus metrics',
    description:
      'Prometheus text format: steps, retries and recoveries of this instance; processes, engine status, queues and workers read from the database at each scrape.',
    // The document has never listed a 503 here, though a scrape reads the database.
    database: false,
    responses: {
      200: {
        description: 'The metrics',
        content: { 'text/plain': { schema: { type: 'string' } } },
      },
    },
  },
  handler: ({ pool, metrics, liveClients }) => {
    const registry = new client.Registry();
    client.collectDefaultMetrics({ register: registry });
    databaseGauges(registry, pool, liveClients);
    const all = client.Registry.merge([registry, metrics.registry]);
    return async (_req, res) => {
      res.type(all.contentType).send(await all.metrics());
    };
  },
};
