// Entry point of `npm run worker -- --queues tasks|workflows|a,b --concurrency N`.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { configWarnings, loadConfig } from '../config/index.ts';
import { createLogger } from '../config/logger.ts';
import { resolveQueues, UnknownQueueError } from '../executors/boss.ts';
import { startWorker } from '../worker.ts';
import { onShutdownSignals } from './signals.ts';

const usage = `Usage: npm run worker -- [--queues workflows|tasks|all|name,name…] [--concurrency N]`;

class UsageError extends Error {
  override name = 'UsageError';
}

let logger = createLogger('info', { service: 'worker' });
try {
  const { values } = parseArgs({
    options: {
      queues: { type: 'string', short: 'q' },
      concurrency: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const config = loadConfig();
  logger = createLogger(config.LOG_LEVEL, { service: 'worker' });
  for (const warning of configWarnings()) logger.warn(warning);
  const concurrency = Number(values.concurrency ?? os.availableParallelism());
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new UsageError(`--concurrency must be a whole number ≥ 1, got ${values.concurrency}`);
  }
  const queues = resolveQueues(values.queues, config.TARGET_QUEUES);
  const worker = await startWorker(config, logger, { queues, concurrency });
  onShutdownSignals(logger, () => worker.stop());
} catch (err) {
  // Mistakes on the command line get a plain message and the usage, not a log line.
  const usageMistake =
    err instanceof UsageError ||
    err instanceof UnknownQueueError ||
    (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
  if (usageMistake) process.stderr.write(`${(err as Error).message}\n${usage}\n`);
  else logger.error((err as Error).message);
  process.exit(1);
}
