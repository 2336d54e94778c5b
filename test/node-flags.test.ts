// The Node.js flags of src/config/node-flags.ts are written out where that module cannot be
// imported (npm scripts, the Docker image, the launcher's message, the README): they must agree.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../src/config/node-flags.ts';

const root = path.resolve(import.meta.dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
const flags = NODE_FLAGS.join(' ');

describe('the Node.js flags written out', () => {
  it('are those of src/config/node-flags.ts', () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> })
      .scripts;
    for (const [script, command] of [
      ['start', 'serve'],
      ['worker', 'worker'],
      ['queues', 'queues'],
      ['migrate', 'migrate'],
    ] as const)
      expect(scripts[script], `npm run ${script}`).toBe(`node ${flags} src/cli/run.js ${command}`);
    expect(read('Dockerfile')).toContain(`ENV NODE_OPTIONS=${flags}\n`);
    expect(read('src/cli/run.js')).toContain(`node_modules/.bin/node ${flags} src/cli/run.js`);
    for (const flag of NODE_FLAGS) expect(read('README.md')).toContain(`Start it with \`${flag}\``);
  });
});
