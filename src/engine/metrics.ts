// Metrics of what runs here (steps, retries, recoveries), in a prom-client registry that the
// API's /metrics (and a worker's, with METRICS_PORT) serves. Names follow the original
// orchestrator's (`wfo_…`), so its dashboards map onto them.
import client from 'prom-client';

export interface EngineMetrics {
  registry: client.Registry;
  /** A step ran (its body or action) and was committed with `status`. */
  stepRan(workflow: string, step: string, status: string, seconds: number): void;
  /** A retry step's failure scheduled a retry. */
  retryScheduled(workflow: string, step: string): void;
  /** Processes found with an expired lease and continued. */
  leasesRecovered(count: number): void;
}

const FAILED_STEP = new Set(['failed', 'waiting', 'abort']);

export function createEngineMetrics(registry = new client.Registry()): EngineMetrics {
  const duration = new client.Histogram({
    name: 'wfo_step_duration_seconds',
    help: 'Time from the start of a step to its commit, by workflow, step and step status',
    labelNames: ['workflow', 'step', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const failures = new client.Counter({
    name: 'wfo_step_failures_total',
    help: 'Steps that failed (including failures a retry step retries), by workflow and step',
    labelNames: ['workflow', 'step'] as const,
    registers: [registry],
  });
  const retries = new client.Counter({
    name: 'wfo_step_retries_total',
    help: 'Automatic retries scheduled by retry steps, by workflow and step',
    labelNames: ['workflow', 'step'] as const,
    registers: [registry],
  });
  const recovered = new client.Counter({
    name: 'wfo_lease_expiries_recovered_total',
    help: 'Processes found running with an expired lease (their runner died) and continued',
    registers: [registry],
  });
  return {
    registry,
    stepRan(workflow, step, status, seconds) {
      duration.observe({ workflow, step, status }, seconds);
      if (FAILED_STEP.has(status)) failures.inc({ workflow, step });
    },
    retryScheduled: (workflow, step) => retries.inc({ workflow, step }),
    leasesRecovered: (count) => {
      if (count > 0) recovered.inc(count);
    },
  };
}

/** Metrics that go nowhere (tests, tools). */
export const noMetrics: EngineMetrics = {
  registry: new client.Registry(),
  stepRan: () => {},
  retryScheduled: () => {},
  leasesRecovered: () => {},
};
