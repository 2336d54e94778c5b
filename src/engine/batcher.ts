// Group sends: many callers' writes in one statement when the database is busy, each alone when
// it is idle. Serves the step commits (commit-batcher.ts) and the starts of processes
// (operations/starts.ts).

export interface BatcherOptions<T, R> {
  /** Sends one item alone; `afterFailure`: a batch holding it failed first. */
  one: (item: T, afterFailure: boolean) => Promise<R>;
  /** Sends several items in one statement (one round trip, one commit); results in their order. */
  many: (items: T[]) => Promise<R[]>;
  /** Statements in flight at once; items arriving meanwhile wait and go together. Default 3. */
  maxInFlight?: number;
  /** Items per statement at most. Default 64. */
  maxBatch?: number;
}

export interface Batcher<T, R> {
  /** Resolves with the item's own result; rejects with its own error. */
  add(item: T): Promise<R>;
}

interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

/**
 * An idle batcher sends each item at once (no added latency); a busy one, with `maxInFlight`
 * statements out, collects the items that arrive meanwhile into the next statement. A failed
 * batch falls back to sending its items one by one, so one bad item fails only itself.
 */
export function createBatcher<T, R>(opts: BatcherOptions<T, R>): Batcher<T, R> {
  const maxInFlight = opts.maxInFlight ?? 3;
  const maxBatch = opts.maxBatch ?? 64;
  const queue: Pending<T, R>[] = [];
  let inFlight = 0;

  async function send(batch: Pending<T, R>[]): Promise<void> {
    if (batch.length === 1) {
      const [p] = batch as [Pending<T, R>];
      await opts.one(p.item, false).then(p.resolve, p.reject);
      return;
    }
    let results: R[];
    try {
      results = await opts.many(batch.map((p) => p.item));
    } catch {
      await Promise.all(batch.map((p) => opts.one(p.item, true).then(p.resolve, p.reject)));
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i] as R));
  }

  function pump(): void {
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = queue.splice(0, maxBatch);
      inFlight++;
      void send(batch).finally(() => {
        inFlight--;
        pump();
      });
    }
  }

  return {
    add(item) {
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        pump();
      });
    },
  };
}
