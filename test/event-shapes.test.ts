// One description of each live event: the SQL that builds it in RETURNING clauses produces exactly
// the shape of its zod schema (no key missing, none extra, every value of its type), checked on
// real rows of every status a row can have.
import { describe, expect, it } from 'vitest';
import {
  processEventSchema,
  processEventSql,
  stepEventSchema,
  stepEventSql,
} from '../src/db/events.ts';
import { PROCESS_STATUSES, STEP_STATUSES } from '../src/db/model.ts';
import { seedProcess } from './support/database.ts';
import { useHarness } from './support/harness.ts';

const h = useHarness();

describe('event shapes', () => {
  it('processEventSql builds a process event as processEventSchema describes it', async () => {
    const ids = [];
    for (const status of PROCESS_STATUSES) {
      const id = await seedProcess(h.db.pool);
      await h.db.pool.query(`UPDATE orchestrator.processes SET status = $2 WHERE id = $1`, [
        id,
        status,
      ]);
      ids.push(id);
    }
    // A last step on one, none on the others.
    await h.db.pool.query(`UPDATE orchestrator.processes SET last_step = 'One' WHERE id = $1`, [
      ids[0],
    ]);
    const { rows } = await h.db.pool.query<{ e: unknown }>(
      `SELECT ${processEventSql('p')} AS e FROM orchestrator.processes p WHERE p.id = ANY($1::uuid[])`,
      [ids],
    );
    expect(rows).toHaveLength(PROCESS_STATUSES.length);
    for (const { e } of rows) expect(processEventSchema.strict().parse(e)).toEqual(e);
    expect(new Set(rows.map(({ e }) => (e as { status: string }).status)).size).toBe(
      PROCESS_STATUSES.length,
    );
  });

  it('stepEventSql builds a step event as stepEventSchema describes it', async () => {
    const id = await seedProcess(h.db.pool);
    for (const [i, status] of STEP_STATUSES.entries()) {
      await h.db.pool.query(
        `INSERT INTO orchestrator.process_steps
                (process_id, step_index, name, status, state, started_at, completed_at)
         VALUES ($1, $2, $3, $4, '{}', now(), now())`,
        [id, i, `Step ${i}`, status],
      );
    }
    const { rows } = await h.db.pool.query<{ e: unknown }>(
      `SELECT ${stepEventSql('s')} AS e FROM orchestrator.process_steps s WHERE s.process_id = $1`,
      [id],
    );
    expect(rows).toHaveLength(STEP_STATUSES.length);
    for (const { e } of rows) expect(stepEventSchema.strict().parse(e)).toEqual(e);
  });
});
