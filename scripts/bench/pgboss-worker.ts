// One pg-boss worker process of the floor measurement: completes no-op jobs until stopped.
// Fetches in batches and keeps fetching while batches come back full (otherwise a notify-enabled
// queue waits out its 30 s backstop poll after each job).
import { PgBoss } from 'pg-boss';

const [url, schema, queue, concurrency, batchSize] = process.argv.slice(2) as string[];
const boss = new PgBoss({ connectionString: url!, schema: schema!, useListenNotify: true });
boss.on('error', (err: unknown) => process.stderr.write(`pg-boss error: ${String(err)}\n`));
await boss.start();
await boss.work(
  queue!,
  {
    localConcurrency: Number(concurrency),
    batchSize: Number(batchSize),
    burstWhenBatchFull: true,
    pollingIntervalSeconds: 0.5,
  },
  async () => {},
);
process.stdout.write('worker ready\n');
process.on('SIGTERM', () => {
  boss.stop({ graceful: true, timeout: 5_000 }).then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
