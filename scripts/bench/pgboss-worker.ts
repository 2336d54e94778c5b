// One pg-boss worker process of the floor measurement, consuming like a worker-mode worker
// (src/executors/worker.ts): `concurrency` slots that each fetch one job, complete it and fetch
// again at once. The handler does nothing. An idle slot looks again after 20 ms (workers are
// woken by NOTIFY instead), so the floor never waits on a wake-up.
import { setTimeout as sleep } from 'node:timers/promises';
import { PgBoss } from 'pg-boss';

const [url, schema, queue, concurrency] = process.argv.slice(2) as string[];
const boss = new PgBoss({ connectionString: url!, schema: schema! });
boss.on('error', (err: unknown) => process.stderr.write(`pg-boss error: ${String(err)}\n`));
await boss.start();
let running = true;
const slots = Array.from({ length: Number(concurrency) }, async () => {
  while (running) {
    const [job] = await boss.fetch(queue!, { batchSize: 1 });
    if (!job) {
      await sleep(20);
      continue;
    }
    await boss.complete(queue!, job.id);
  }
});
process.stdout.write('worker ready\n');
process.on('SIGTERM', () => {
  running = false;
  Promise.all(slots)
    .then(() => boss.stop({ graceful: true, timeout: 5_000 }))
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
});
