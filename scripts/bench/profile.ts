// `node scripts/bench/profile.ts [processes]`: one threadpool throughput run with the API under
// `--cpu-prof` (profiles in .data/bench-profile/), for finding where a step's time goes.
import path from 'node:path';
import { measureThroughput } from './throughput.ts';
import { openBenchDatabase, root, startApi } from './system.ts';

const processes = Number(process.argv[2] ?? 3_000);
const dir = path.join(root, '.data', 'bench-profile');
const db = await openBenchDatabase({ pgStats: false });
try {
  const api = await startApi(db, 'threadpool', {
    NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}`,
  });
  await measureThroughput(db, api.url, { processes: 200, stateBytes: 0 });
  const r = await measureThroughput(db, api.url, { processes, stateBytes: 0 });
  process.stdout.write(`${JSON.stringify(r)} peak RSS ${api.process.peakRssMb()} MB\n`);
  await api.process.stop();
  process.stdout.write(`profiles in ${dir}\n`);
} finally {
  await db.close();
}
