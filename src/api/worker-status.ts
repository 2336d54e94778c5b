// GET /api/settings/worker-status: the executor, the workers online (registered and heartbeating)
// with their queues, and queued/active jobs per queue.
import { onlineWorkers, queueCounts } from '../db/workers.ts';
import { workerStatusSchema } from './responses.ts';
import { json, type Route } from './route.ts';

export const workerStatusRoute: Route = {
  method: 'get',
  path: '/api/settings/worker-status',
  doc: {
    tag: 'Settings',
    operationId: 'getWorkerStatus',
    summary: 'Executor, workers online and jobs per queue',
    responses: { 200: json(workerStatusSchema, 'The worker status') },
  },
  handler: (ctx) => async (_req, res) => {
    const [workers, queues] = await Promise.all([
      onlineWorkers(ctx.pool),
      queueCounts(ctx.pool, ctx.queues),
    ]);
    res.json({
      executor: ctx.executor,
      workersOnline: workers.length,
      workers: workers.map((w) => ({
        id: w.id,
        hostname: w.hostname,
        pid: w.pid,
        queues: w.queues,
        concurrency: w.concurrency,
        startedAt: w.startedAt,
        heartbeatAt: w.heartbeatAt,
      })),
      queues,
    });
  },
};
