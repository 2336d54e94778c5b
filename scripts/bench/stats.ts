// Summaries of repeated measurements: every figure is the median of its runs, with min and max.

/** The value at quantile `q` (0..1) of `values`, by nearest rank; NaN for no values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** One figure over several runs. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function summarize(runs: readonly number[]): Summary {
  return {
    median: quantile(runs, 0.5),
    min: Math.min(...runs),
    max: Math.max(...runs),
    runs: [...runs],
  };
}

/** Latency samples of one run, in milliseconds. */
export interface LatencyRun {
  p50: number;
  p99: number;
  samples: number;
}

export function latencyRun(samples: readonly number[]): LatencyRun {
  return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), samples: samples.length };
}

/** Medians over runs of p50 and p99. */
export interface LatencySummary {
  p50: Summary;
  p99: Summary;
}

export function summarizeLatency(runs: readonly LatencyRun[]): LatencySummary {
  return { p50: summarize(runs.map((r) => r.p50)), p99: summarize(runs.map((r) => r.p99)) };
}

/** Runs `fn` `n` times in sequence, collecting its results. */
export async function repeat<T>(n: number, fn: (run: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await fn(i));
  return out;
}
