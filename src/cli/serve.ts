// Entry point of `npm start`: API + executor (+ embedded Postgres unless DATABASE_URL is set).
import { configWarnings, loadConfig } from '../config/index.ts';
import { createLogger } from '../config/logger.ts';
import { startOrchestrator } from '../server.ts';
import { onShutdownSignals } from './signals.ts';

let logger = createLogger('info', { service: 'api' });
try {
  const config = loadConfig();
  logger = createLogger(config.LOG_LEVEL, { service: 'api' });
  for (const warning of configWarnings()) logger.warn(warning);
  const orchestrator = await startOrchestrator(config, logger);
  onShutdownSignals(logger, () => orchestrator.close());
} catch (err) {
  logger.error((err as Error).message);
  process.exit(1);
}
