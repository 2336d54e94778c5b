// One pg-boss worker process of the floor measurement, consuming like a worker-mode worker
// (src/executors/worker.ts): `concurrency` slots that each fetch one job at a time from a
// notify-enabled queue and wake themselves after every job. The handler does nothing.
import { PgBoss } from 'pg-boss';

const [url, schema, queue, concurrency] = process.argv.slice(2) as string[];
const boss = new PgBoss({ connectionString: url!, schema: schema!, useListenNotify: true });
boss.on('error', (err: unknown) => process.stderr.write(`pg-boss error: ${String(err)}\n`));
await boss.start();
for (let i = 0; i < Number(concurrency); i++) {
  const slot: { id?: string } = {};
  slot.id = await boss.work(
    queue!,
    { batchSize: 1, pollingIntervalSeconds: 2, notifyPollingIntervalSeconds: 10 },
    async () => {
      if (slot.id) boss.notifyWorker(slot.id);
    },
  );
}
process.stdout.write('worker ready\n');
process.on('SIGTERM', () => {
  boss.stop({ graceful: true, timeout: 5_000 }).then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
