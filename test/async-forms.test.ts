// Forms that look things up: page functions and refinements that are async, here querying an
// inventory (a local HTTP server), in the start, an input step's resume, the process view and the
// workflow's description; and FORM_TIMEOUT_MS, past which the answer is 504 `form_timeout` with
// nothing written. Fixtures: test/fixtures/workflows-forms.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createTestEngine } from '../src/testing.ts';
import inventoryPort from './fixtures/workflows-forms/inventory_port.ts';
import { useHarness } from './support/harness.ts';
import { fixtures } from './support/paths.ts';

const FORM_TIMEOUT_MS = 400;
/** How long a slow lookup takes: well past the limit. */
const SLOW_MS = 3_000;

/** The inventory: devices with their ports (Ethernet2 of leaf-1 in use), VLANs, and sites. */
const slow = { ports: false, vlans: false, sites: false };
const lookups: string[] = [];
const inventory = http.createServer((req, res) => {
  const path = req.url ?? '';
  lookups.push(path);
  const answer = (status: number, body: unknown, late = false) => {
    const send = () =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (late) setTimeout(send, SLOW_MS).unref();
    else send();
  };
  let m: RegExpExecArray | null;
  if (path === '/sites') return answer(200, { sites: ['ams', 'fra'] }, slow.sites);
  if ((m = /^\/devices\/(leaf-[12])\/ports$/.exec(path)))
    return answer(200, { ports: ['Ethernet1', 'Ethernet2'] }, slow.ports);
  if ((m = /^\/devices\/(leaf-[12])\/ports\/(\w+)$/.exec(path)))
    return answer(200, { free: !(m[1] === 'leaf-1' && m[2] === 'Ethernet2') });
  if (/^\/devices\/leaf-[12]\/vlans$/.test(path))
    return answer(200, { vlans: [10, 20] }, slow.vlans);
  answer(404, { error: 'no such device' });
});
await new Promise<void>((resolve) => inventory.listen(0, '127.0.0.1', resolve));
process.env.INVENTORY_URL = `http://127.0.0.1:${(inventory.address() as AddressInfo).port}`;
afterAll(async () => {
  inventory.closeAllConnections();
  await new Promise((resolve) => inventory.close(resolve));
});
beforeEach(() => {
  Object.assign(slow, { ports: false, vlans: false, sites: false });
  lookups.length = 0;
});

const h = useHarness({
  executor: 'threadpool',
  env: { WORKFLOWS_DIR: fixtures('workflows-forms'), FORM_TIMEOUT_MS: String(FORM_TIMEOUT_MS) },
});

async function rowCounts() {
  const { rows } = await h.db.pool.query<{ p: number; s: number; i: number }>(
    `SELECT (SELECT count(*) FROM orchestrator.processes)::int AS p,
            (SELECT count(*) FROM orchestrator.process_steps)::int AS s,
            (SELECT count(*) FROM orchestrator.input_states)::int AS i`,
  );
  return rows[0]!;
}

/** A process of inventory_port on leaf-1's Ethernet1, suspended at its VLAN step. */
async function suspendedOnLeaf1(): Promise<string> {
  const id = await h.http.start('inventory_port', [{ device: 'leaf-1' }, { port: 'Ethernet1' }]);
  await h.http.waitForStatus(id, 'suspended');
  return id;
}

describe('a start form that looks things up', () => {
  it("offers the device's ports from the inventory as the next page", async () => {
    const before = await rowCounts();
    const r = await h.http.post('/api/processes/inventory_port', { device: 'leaf-1' });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe('form_incomplete');
    expect(r.body.error.details.page).toBe(1);
    expect(r.body.error.details.form.properties.port.enum).toEqual(['Ethernet1', 'Ethernet2']);
    expect(lookups).toEqual(['/devices/leaf-1/ports']);
    expect(await rowCounts()).toEqual(before);
  });

  it('refuses a port the inventory has in use (an async refinement), writing nothing', async () => {
    const before = await rowCounts();
    const r = await h.http.post('/api/processes/inventory_port', [
      { device: 'leaf-1' },
      { port: 'Ethernet2' },
    ]);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('validation_error');
    expect(r.body.error.details).toEqual([
      expect.objectContaining({ path: ['port'], message: 'the port is in use', page: 1 }),
    ]);
    expect(lookups).toContain('/devices/leaf-1/ports/Ethernet2');
    expect(await rowCounts()).toEqual(before);
  });

  it('answers 400 validation_error when the lookup fails (a device the inventory does not know)', async () => {
    const before = await rowCounts();
    const r = await h.http.post('/api/processes/inventory_port', [
      { device: 'spine-9' },
      { port: 'Ethernet1' },
    ]);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('validation_error');
    expect(r.body.error.message).toMatch(/Page 2 of the form cannot be built.*404/);
    expect(await rowCounts()).toEqual(before);
  });

  it('starts with a free port; GET /api/workflows/:name builds an async first page', async () => {
    const id = await suspendedOnLeaf1();
    const p = (await h.http.get(`/api/processes/${id}`)).body;
    expect(p.currentState).toEqual({ device: 'leaf-1', port: 'Ethernet1' });

    const w = await h.http.get('/api/workflows/inventory_site');
    expect(w.status).toBe(200);
    expect(w.body.inputSchema.properties.site.enum).toEqual(['ams', 'fra']);
    const all = await h.http.get('/api/workflows');
    expect(all.status).toBe(200);
    expect(all.body.map((x: { name: string }) => x.name)).toEqual([
      'inventory_port',
      'inventory_site',
    ]);
  });

  it('answers 504 form_timeout for a lookup slower than FORM_TIMEOUT_MS, writing nothing', async () => {
    slow.ports = true;
    const before = await rowCounts();
    const t0 = Date.now();
    const r = await h.http.post('/api/processes/inventory_port', [
      { device: 'leaf-2' },
      { port: 'Ethernet1' },
    ]);
    expect(r.status).toBe(504);
    expect(r.body.error.code).toBe('form_timeout');
    expect(r.body.error.message).toMatch(/workflow inventory_port.*400 ms/);
    expect(Date.now() - t0).toBeLessThan(SLOW_MS);
    expect(await rowCounts()).toEqual(before);
    // Still nothing once the lookup has answered after all.
    await delay(SLOW_MS - (Date.now() - t0) + 200);
    expect(await rowCounts()).toEqual(before);
  });

  it('answers 504 form_timeout for GET /api/workflows/:name and refuses the schedule alike', async () => {
    slow.sites = true;
    const w = await h.http.get('/api/workflows/inventory_site');
    expect(w.status).toBe(504);
    expect(w.body.error.code).toBe('form_timeout');
    const s = await h.http.post('/api/schedules', {
      name: 'sites',
      workflow: 'inventory_site',
      cron: '0 * * * *',
      input: { site: 'ams' },
    });
    expect(s.status).toBe(504);
    expect(s.body.error.code).toBe('form_timeout');
    expect((await h.http.get('/api/schedules')).body).toEqual([]);
  });
});

describe('an input step whose form looks things up', () => {
  it('shows the VLANs of the device as its form, and takes them', async () => {
    const id = await suspendedOnLeaf1();
    const p = (await h.http.get(`/api/processes/${id}`)).body;
    expect(p.status).toBe('suspended');
    expect(p.formPages).toBe(2);
    expect(p.form.properties.vlan.anyOf.map((x: { const: number }) => x.const)).toEqual([10, 20]);

    const wrong = await h.http.put(`/api/processes/${id}/resume`, [
      { vlan: 30 },
      { confirmed: true },
    ]);
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.code).toBe('validation_error');
    const half = await h.http.put(`/api/processes/${id}/resume`, [{ vlan: 20 }]);
    expect(half.status).toBe(422);
    expect(half.body.error.details.form.properties.note.default).toBe('vlan 20');

    expect(
      (await h.http.put(`/api/processes/${id}/resume`, [{ vlan: 20 }, { confirmed: true }])).status,
    ).toBe(204);
    const done = await h.http.waitForStatus(id, 'completed');
    expect(done.currentState.provisioned).toBe('leaf-1/Ethernet1/20 (vlan 20)');
  });

  it('answers 504 form_timeout for the resume when the lookup is slow, writing nothing; the GET shows the process and why its form is missing', async () => {
    const id = await suspendedOnLeaf1();
    slow.vlans = true;
    const before = await rowCounts();
    const t0 = Date.now();
    const got = await h.http.get(`/api/processes/${id}`);
    expect(got.status).toBe(200);
    expect(got.body.status).toBe('suspended');
    expect(got.body.form).toBeUndefined();
    expect(got.body.formError.code).toBe('form_timeout');
    expect(got.body.formError.message).toMatch(/step Vlan/);
    const r = await h.http.put(`/api/processes/${id}/resume`, [{ vlan: 10 }, { confirmed: true }]);
    expect(r.status).toBe(504);
    expect(r.body.error.code).toBe('form_timeout');
    expect(Date.now() - t0).toBeLessThan(SLOW_MS);
    await delay(SLOW_MS - (Date.now() - t0) + 200);
    expect(await rowCounts()).toEqual(before);

    slow.vlans = false;
    const p = (await h.http.get(`/api/processes/${id}`)).body;
    expect(p.status).toBe('suspended');
    expect(p.lastStep).toBe('Vlan');
    expect(
      (await h.http.put(`/api/processes/${id}/resume`, [{ vlan: 10 }, { confirmed: true }])).status,
    ).toBe(204);
    await h.http.waitForStatus(id, 'completed');
  });

  it('documents form_timeout on the routes that can answer it', async () => {
    const doc = (await h.http.get('/api/openapi.json')).body;
    const codes = (op: any) => op.responses['504'].content['application/json'].schema.properties;
    for (const op of [
      doc.paths['/api/processes/inventory_port'].post,
      doc.paths['/api/processes/{id}/resume'].put,
      doc.paths['/api/workflows/{name}'].get,
      doc.paths['/api/schedules'].post,
    ])
      expect(JSON.stringify(codes(op))).toContain('form_timeout');
  });
});

describe('the test kit', () => {
  it('runs forms that look things up, and refuses a slow one with form_timeout', async () => {
    const t = await createTestEngine({
      workflows: [inventoryPort],
      databaseUrl: inject('adminUrl'),
      formTimeoutMs: FORM_TIMEOUT_MS,
    });
    try {
      await expect(t.run('inventory_port', { device: 'leaf-1' })).rejects.toMatchObject({
        code: 'form_incomplete',
      });
      const p = await t.run('inventory_port', [{ device: 'leaf-1' }, { port: 'Ethernet1' }]);
      expect(p.status).toBe('suspended');
      expect(p.formPages).toBe(2);
      expect((await t.resume(p.id, [{ vlan: 10 }, { confirmed: true }])).status).toBe('completed');

      slow.ports = true;
      await expect(
        t.run('inventory_port', [{ device: 'leaf-2' }, { port: 'Ethernet1' }]),
      ).rejects.toMatchObject({ code: 'form_timeout' });
    } finally {
      await t.close();
    }
  });
});
