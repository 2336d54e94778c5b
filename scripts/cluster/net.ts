// Several machines on one: a network namespace per host, each with one veth link to a bridge in a
// hub namespace, `tc netem` on both ends of every link (delay each way, optional loss), and
// partitions as blackhole routes (silent drops). Needs root and iproute2 (`ip`, `tc`).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** Every namespace this makes starts with this, so that `down` finds leftovers of a crashed run. */
export const PREFIX = 'kc-';
const HUB = `${PREFIX}hub`;
const SUBNET = '10.77.0';

export interface Host {
  name: string;
  /** Its namespace. */
  ns: string;
  ip: string;
  /** Its link's end in the hub. */
  hubEnd: string;
}

function host(name: string, last: number): Host {
  return { name, ns: `${PREFIX}${name}`, ip: `${SUBNET}.${last}`, hubEnd: `kv-${name}` };
}

/** The hosts: Postgres, two API hosts, `workers` worker hosts, a client. */
export function topology(workers: number) {
  return {
    pg: host('pg', 2),
    apis: [host('api1', 11), host('api2', 12)],
    workers: Array.from({ length: workers }, (_, i) => host(`w${i + 1}`, 21 + i)),
    client: host('client', 31),
  };
}
export type Topology = ReturnType<typeof topology>;
export const allHosts = (t: Topology): Host[] => [t.pg, ...t.apis, ...t.workers, t.client];

function run(cmd: string, args: string[], opts: { check?: boolean } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if ((opts.check ?? true) && r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout;
}
const ip = (...args: string[]) => run('ip', args);
const inNs = (ns: string, cmd: string, ...args: string[]) =>
  run('ip', ['netns', 'exec', ns, cmd, ...args]);

/** Why namespaces cannot be made here (not root, no iproute2), or undefined when they can. */
export function cannotBuild(): string | undefined {
  if (process.getuid?.() !== 0)
    return 'needs root: network namespaces, veth links and tc netem need CAP_NET_ADMIN (run as root)';
  for (const tool of ['ip', 'tc']) {
    const r = spawnSync(tool, ['-V'], { encoding: 'utf8' });
    if (r.error) return `needs iproute2 (\`${tool}\` not found): apt-get install -y iproute2`;
  }
  const probe = `${PREFIX}probe`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot create a network namespace here: ${r.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

/** Namespaces of ours that exist (a crashed run's too). */
export function ourNamespaces(): string[] {
  return run('ip', ['netns', 'list'], { check: false })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(PREFIX));
}

/** Kills every process in our namespaces (SIGKILL), then deletes them (their links go too). */
export function teardown(): void {
  for (const ns of ourNamespaces()) {
    const pids = run('ip', ['netns', 'pids', ns], { check: false }).split('\n').filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  for (const ns of ourNamespaces()) run('ip', ['netns', 'del', ns], { check: false });
}

/** The link shaping of one end: delay (ms, one way) and loss (%). */
export interface Shape {
  delayMs: number;
  lossPct: number;
}

let netem: boolean | undefined;
/**
 * Whether this kernel has `sch_netem` (some, e.g. minimal VM kernels without modules, do not):
 * without it links are not delayed and loss cannot be simulated; partitions still work (routes).
 */
export function netemAvailable(): boolean {
  if (netem === undefined) {
    const ns = `${PREFIX}netem-probe`;
    spawnSync('ip', ['netns', 'add', ns]);
    const r = spawnSync('ip', [
      'netns',
      'exec',
      ns,
      'tc',
      'qdisc',
      'add',
      'dev',
      'lo',
      'root',
      'netem',
      'delay',
      '1ms',
    ]);
    spawnSync('ip', ['netns', 'del', ns]);
    netem = r.status === 0;
  }
  return netem;
}

function shapeEnd(ns: string, dev: string, s: Shape): void {
  if (!netemAvailable()) return;
  const args = ['qdisc', 'replace', 'dev', dev, 'root', 'netem', 'delay', `${s.delayMs}ms`];
  if (s.lossPct > 0) args.push('loss', `${s.lossPct}%`);
  // netem's default queue (1,000 packets) drops bursts of a busy link.
  args.push('limit', '100000');
  inNs(ns, 'tc', ...args);
}

/** Builds the namespaces and links; every link delayed `shape.delayMs` each way (with netem). */
export function build(t: Topology, shape: Shape): void {
  teardown();
  ip('netns', 'add', HUB);
  inNs(HUB, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
  inNs(HUB, 'ip', 'link', 'set', 'br0', 'up');
  inNs(HUB, 'ip', 'link', 'set', 'lo', 'up');
  for (const h of allHosts(t)) {
    ip('netns', 'add', h.ns);
    ip(
      'link',
      'add',
      h.hubEnd,
      'netns',
      HUB,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'netns',
      h.ns,
    );
    inNs(HUB, 'ip', 'link', 'set', h.hubEnd, 'master', 'br0');
    inNs(HUB, 'ip', 'link', 'set', h.hubEnd, 'up');
    inNs(h.ns, 'ip', 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0');
    inNs(h.ns, 'ip', 'link', 'set', 'eth0', 'up');
    inNs(h.ns, 'ip', 'link', 'set', 'lo', 'up');
  }
  shapeAll(t, shape);
}

/**
 * Every link: half the delay on the host's end, half on the hub's, so a packet from one host to
 * another is delayed `delayMs` (its sender's end and its receiver's hub end); loss likewise split.
 */
export function shapeAll(t: Topology, shape: Shape): void {
  for (const h of allHosts(t)) shapeHost(h, shape);
}

export function shapeHost(h: Host, s: Shape): void {
  const lossPct = s.lossPct > 0 ? 100 * (1 - Math.sqrt(1 - s.lossPct / 100)) : 0;
  const half = { delayMs: s.delayMs / 2, lossPct };
  shapeEnd(h.ns, 'eth0', half);
  shapeEnd(HUB, h.hubEnd, half);
}

/**
 * Cuts `h` off from `others` both ways: a blackhole route to each on `h` and one to `h` on each,
 * so packets are dropped silently (TCP retransmits into the void; nothing is reset).
 */
export function partition(h: Host, others: readonly Host[]): void {
  for (const o of others) {
    inNs(h.ns, 'ip', 'route', 'replace', 'blackhole', `${o.ip}/32`);
    inNs(o.ns, 'ip', 'route', 'replace', 'blackhole', `${h.ip}/32`);
  }
}

/** Undoes `partition`. */
export function heal(h: Host, others: readonly Host[]): void {
  for (const o of others) {
    run('ip', ['netns', 'exec', h.ns, 'ip', 'route', 'del', 'blackhole', `${o.ip}/32`], {
      check: false,
    });
    run('ip', ['netns', 'exec', o.ns, 'ip', 'route', 'del', 'blackhole', `${h.ip}/32`], {
      check: false,
    });
  }
}

/** A command run in a host's namespace, in a process group of its own. */
export function spawnIn(
  h: Host,
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {},
): ChildProcess {
  return spawn('ip', ['netns', 'exec', h.ns, cmd, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
}

/** Runs a command in a host's namespace to its end; its stdout. */
export function runIn(h: Host, cmd: string, ...args: string[]): string {
  return inNs(h.ns, cmd, ...args);
}
