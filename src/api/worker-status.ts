// GET /api/settings/worker-status: the executor, the workers online (registered and heartbeating)
// with their queues, and queued/active jobs per queue.
import express from 'express';
import type { Pool } from '../db/pool.ts';
import { onlineWorkers, queueCounts } from '../db/workers.ts';

export interface WorkerStatusOptions {
  pool: Pool;
  executor: 'threadpool' | 'worker';
  /** The queues of this deployment, in display order. */
  queues: readonly string[];
}

export function workerStatusRouter(opts: WorkerStatusOptions): express.Router {
  const router = express.Router();
  router.get('/api/settings/worker-status', async (_req, res) => {
    const [workers, queues] = await Promise.all([
      onlineWorkers(opts.pool),
      queueCounts(opts.pool, opts.queues),
    ]);
    res.json({
      executor: opts.executor,
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
  });
  return router;
}
