// The one entry point in plain JavaScript: `node src/cli/run.js <command> [args]`. It checks the
// Node.js version before anything TypeScript is loaded, so that an older `node` (Debian's is 18,
// many machines have 20) says what it needs instead of failing on the first `.ts` import. Under
// npm (`npm start`, `npm run worker`, …) the `node` is the project's own, installed by
// `npm install` into node_modules/.bin (the `node` package), whatever the machine has.
const NEEDED = [22, 18];
const COMMANDS = ['serve', 'worker', 'queues', 'migrate'];

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < NEEDED[0] || (major === NEEDED[0] && minor < NEEDED[1])) {
  process.stderr.write(
    `The orchestrator needs Node.js ${NEEDED.join('.')} or later; this is ${process.version} ` +
      `(${process.execPath}).\nRun it through npm (npm start, npm run worker, npm run queues, ` +
      `npm run migrate): after npm install they use the Node.js the project installs in ` +
      `node_modules/.bin. Or run node_modules/.bin/node --no-experimental-require-module src/cli/run.js ${process.argv[2] ?? 'serve'}.\n`,
  );
  process.exit(1);
}
const command = process.argv[2];
if (!COMMANDS.includes(command)) {
  process.stderr.write(`usage: node src/cli/run.js <${COMMANDS.join('|')}> [args]\n`);
  process.exit(2);
}
process.argv.splice(2, 1);
await import(`./${command}.ts`);
