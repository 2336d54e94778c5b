// Errors of the database that no client can fix, from a real server: a full disk (53100, a
// tablespace on a tmpfs filled to the last page) and no connection slot left (53300, a hog of
// connections on a cluster with a small max_connections). The API answers them 503 with a code
// (`database_full`, `database_busy`) and never 500, tries a refused connection again, says so in
// its health check, and recovers once the disk or the slots are free.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { OwnCluster } from '../scripts/support/cluster.ts';
import { useHarness } from './support/harness.ts';

describe('a full disk (53100)', () => {
  // Worker mode without workers: the API only records and enqueues, so nothing but the requests
  // below writes to the full tablespace.
  const h = useHarness({ executor: 'worker', apiIn: 'here', workers: 0 });

  /** A tmpfs of 1 MiB at a new folder; a reason when this machine does not allow one. */
  function tinyDisk(): { dir: string; release(): void } | string {
    if (process.getuid?.() !== 0)
      return 'the full-disk case mounts a tmpfs: it needs root (the CI runs the tests as root)';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keelson-full-disk-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
    } catch (err) {
      fs.rmdirSync(dir);
      return `mounting a tmpfs is not permitted here (${String((err as Error).message).trim()}): the full-disk case needs CAP_SYS_ADMIN`;
    }
    return {
      dir,
      release() {
        try {
          execFileSync('umount', [dir], { stdio: 'pipe' });
        } catch {
          execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
        }
        fs.rmdirSync(dir);
      },
    };
  }

  /** Writes into `dir` until its file system has not one page left; returns the file. */
  function fill(dir: string): string {
    const file = path.join(dir, 'filler');
    const fd = fs.openSync(file, 'w');
    try {
      for (const size of [64 * 1024, 4096, 512, 1]) {
        const chunk = Buffer.alloc(size, 1);
        try {
          for (;;) fs.writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        }
      }
    } finally {
      fs.closeSync(fd);
    }
    return file;
  }

  it('answers 503 database_full, reports it in the health check, and recovers', async (ctx) => {
    const disk = tinyDisk();
    if (typeof disk === 'string') {
      ctx.skip(disk);
      return;
    }
    const { http } = h;
    const db = h.db.pool;
    const tablespace = `full_disk_${randomBytes(4).toString('hex')}`;
    let moved = false;
    let created = false;
    try {
      // The server's folders belong to the OS user it runs as; so must the tablespace's.
      const dataDir = (
        await db.query<{ d: string }>(`SELECT current_setting('data_directory') AS d`)
      ).rows[0]!.d;
      const owner = fs.statSync(dataDir);
      const location = path.join(disk.dir, 'pg');
      fs.mkdirSync(location, { mode: 0o700 });
      fs.chownSync(location, owner.uid, owner.gid);
      await db.query(`CREATE TABLESPACE ${tablespace} LOCATION '${location}'`);
      created = true;
      // The processes' table on the small disk (its indexes stay where they are).
      await db.query(`ALTER TABLE orchestrator.processes SET TABLESPACE ${tablespace}`);
      moved = true;
      expect(await http.start('noop')).toBeTruthy();
      const filler = fill(disk.dir);

      // Starts until the table needs a page the disk does not have: then 503, never 500.
      let refused: { status: number; body: any } | undefined;
      for (let i = 0; i < 500 && !refused; i++) {
        const r = await http.post('/api/processes/noop', {});
        if (r.status !== 201) refused = r;
      }
      expect(refused).toMatchObject({ status: 503, body: { error: { code: 'database_full' } } });
      // Nothing of the refused start was written; reads still answer; health says why writes fail.
      expect((await http.get('/api/processes?limit=1')).status).toBe(200);
      expect(await http.get('/api/health')).toMatchObject({
        status: 503,
        body: { status: 'unavailable', error: { code: 'database_full' } },
      });

      // Space freed: the next start goes through, and health is fine again.
      fs.unlinkSync(filler);
      const id = await http.start('noop');
      expect((await http.get(`/api/processes/${id}`)).body.status).toBe('created');
      expect(await http.get('/api/health')).toEqual({ status: 200, body: { status: 'ok' } });
    } finally {
      if (moved) await db.query(`ALTER TABLE orchestrator.processes SET TABLESPACE pg_default`);
      if (created) await db.query(`DROP TABLESPACE ${tablespace}`);
      disk.release();
    }
  });
});

describe('too many clients (53300)', () => {
  const cluster = new OwnCluster({
    name: 'busy',
    flags: ['-c', 'max_connections=40', '-c', 'fsync=off'],
  });
  const h = useHarness({ executor: 'threadpool', database: cluster, env: { DB_POOL_SIZE: '4' } });

  /** Connections of its own until the server refuses one with 53300. */
  const hog: pg.Client[] = [];
  async function takeEverySlot(): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const c = new pg.Client({ connectionString: h.db.url, application_name: 'hog' });
      c.on('error', () => undefined);
      try {
        await c.connect();
        hog.push(c);
      } catch (err) {
        await c.end().catch(() => undefined);
        if ((err as { code?: string }).code === '53300') return;
        throw err;
      }
    }
    throw new Error('the server never refused a connection');
  }
  /**
   * Until `keeping` is cleared, always one more connection on its way: a slot another client gives
   * up meanwhile (a pool closing an idle connection) goes to the hog, not to the API.
   */
  let keeping = false;
  async function keepEverySlot(): Promise<void> {
    while (keeping) {
      const c = new pg.Client({ connectionString: h.db.url, application_name: 'hog' });
      c.on('error', () => undefined);
      try {
        await c.connect();
        hog.push(c);
      } catch {
        void c.end().catch(() => undefined);
      }
    }
  }
  async function letGo(): Promise<void> {
    await Promise.all(hog.splice(0).map((c) => c.end().catch(() => undefined)));
  }
  // The API's own connections, which it would otherwise keep using.
  const apiSessions = `application_name IN ('orchestrator-api', 'orchestrator-api-reads')`;

  it('answers 503 database_busy, tries again, reports it in the health check, and recovers', async () => {
    const { http } = h;
    const before = await http.start('noop');
    await http.waitForStatus(before, 'completed');
    try {
      await takeEverySlot();
      // Its pools drop their connections (as after a restart) and must open new ones, which the
      // server refuses: every slot is the hog's again.
      for (let round = 0; ; round++) {
        await hog[0]!.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${apiSessions}`,
        );
        await takeEverySlot();
        const { rows } = await hog[0]!.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${apiSessions}`,
        );
        if (rows[0]!.n === 0) break;
        if (round === 5) throw new Error('the API kept taking the slots freed');
      }
      keeping = true;
      const kept = keepEverySlot();

      const start = await http.post('/api/processes/noop', {});
      expect(start).toMatchObject({ status: 503, body: { error: { code: 'database_busy' } } });
      expect(await http.get('/api/processes?limit=1')).toMatchObject({
        status: 503,
        body: { error: { code: 'database_busy' } },
      });
      expect(await http.get('/api/health')).toMatchObject({
        status: 503,
        body: { status: 'unavailable', error: { code: 'database_busy' } },
      });

      // A start while the slots are taken, the hog letting go a moment later: the refused
      // connection is tried again, and the start goes through.
      const pending = http.post('/api/processes/noop', {});
      await sleep(400);
      keeping = false;
      await kept;
      await letGo();
      const late = await pending;
      expect(late.status).toBe(201);
      await http.waitForStatus((late.body as { id: string }).id, 'completed');
      await expect
        .poll(async () => (await http.get('/api/health')).status, { timeout: 10_000 })
        .toBe(200);
      expect((await http.get('/api/processes?limit=1')).status).toBe(200);
    } finally {
      keeping = false;
      await letGo();
    }
  });
});
