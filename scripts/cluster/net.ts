// Several machines on one: a network namespace per host, each with one veth link to a bridge in a
// hub namespace, every link delayed each way with optional loss — `tc netem` where the kernel has
// it, else iptables (loss: `statistic` match; delay: NFQUEUE to nfqueue-delay.py), see
// `shapingMechanism` — and partitions as blackhole routes (silent drops). Needs root and iproute2
// (`ip`, `tc`); without netem, iptables and python3.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

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
  delayers.clear();
}

/** The link shaping of one end: delay (ms, one way) and loss (%). */
export interface Shape {
  delayMs: number;
  lossPct: number;
}

let netem: boolean | undefined;
/**
 * Whether this kernel has `sch_netem` (some, e.g. minimal VM kernels without modules, do not).
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

/**
 * How links are delayed and packets dropped:
 * - `netem`: `tc netem` on both ends of every link (delay and loss in the kernel);
 * - `nfqueue`: without sch_netem, iptables in each host's namespace: loss by the `statistic`
 *   match (`-m statistic --mode random -j DROP`, in the kernel), delay by `-j NFQUEUE` to
 *   scripts/cluster/nfqueue-delay.py, one per host, which holds each outgoing packet for the delay
 *   and then accepts it (a userspace hop per packet: its CPU is reported);
 * - `none`: neither (links undelayed, no loss; partitions still work: routes).
 */
export type Mechanism = 'netem' | 'nfqueue' | 'none';
let mechanism: Mechanism | undefined;
export function shapingMechanism(): Mechanism {
  if (mechanism !== undefined) return mechanism;
  if (netemAvailable()) return (mechanism = 'netem');
  const ns = `${PREFIX}nfqueue-probe`;
  spawnSync('ip', ['netns', 'add', ns]);
  const rule = ['-A', 'OUTPUT', '-o', 'lo', '-j', 'NFQUEUE', '--queue-num', '0', '--queue-bypass'];
  const loss = ['-A', 'OUTPUT', '-o', 'lo', '-m', 'statistic', '--mode', 'random'];
  const ok = [
    ['iptables', ...rule],
    ['iptables', ...loss, '--probability', '0.5', '-j', 'DROP'],
    ['python3', '-c', 'import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)'],
  ].every((c) => spawnSync('ip', ['netns', 'exec', ns, ...c]).status === 0);
  spawnSync('ip', ['netns', 'del', ns]);
  return (mechanism = ok ? 'nfqueue' : 'none');
}

/** Why links cannot be delayed here, or undefined when they can. */
export function cannotShape(): string | undefined {
  if (shapingMechanism() !== 'none') return undefined;
  return 'this kernel has no sch_netem (tc netem) and iptables (NFQUEUE, statistic) or python3 is missing: apt-get install -y iptables';
}

const DELAYER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'nfqueue-delay.py');

/** A host's packet delayer (mechanism `nfqueue`): a Python process in its namespace. */
class Delayer {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  #waiting: ((line: string) => void)[] = [];
  readonly host: Host;
  constructor(host: Host) {
    this.host = host;
    // Real-time priority (SCHED_FIFO) where allowed: on a busy machine a packet otherwise waits for
    // the scheduler, not for its due time (measured: ~1.7 ms late on average at load 9 on 2 cores).
    const rt = spawnSync('chrt', ['-f', '20', 'true']).status === 0 ? ['chrt', '-f', '20'] : [];
    this.child = spawn('ip', ['netns', 'exec', host.ns, ...rt, 'python3', DELAYER, '0', '0'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.child.stdin!.on('error', () => {});
    const lines = readline.createInterface({ input: this.child.stdout! });
    this.ready = new Promise((resolve, reject) => {
      this.#waiting.push(() => resolve());
      this.child.once('exit', (code) =>
        reject(new Error(`${host.name}'s packet delayer exited (${code})`)),
      );
    });
    this.ready.catch(() => {});
    lines.on('line', (line) => this.#waiting.shift()?.(line));
  }
  setDelay(ms: number): void {
    this.child.stdin!.write(`delay ${ms}\n`);
  }
  stats(): Promise<DelayerStats> {
    return new Promise((resolve) => {
      this.#waiting.push((line) => resolve(JSON.parse(line) as DelayerStats));
      this.child.stdin!.write('stats\n');
    });
  }
}

/** A delayer's counters since it started. */
export interface DelayerStats {
  packets: number;
  /** Sum and maximum of how much later than due packets were released (µs). */
  latenessSumUs: number;
  latenessMaxUs: number;
  cpuSeconds: number;
}

const delayers = new Map<string, Delayer>();

/** Every host's delayer's counters (mechanism `nfqueue`; empty otherwise). */
export async function delayerStats(): Promise<Record<string, DelayerStats>> {
  const out: Record<string, DelayerStats> = {};
  for (const [name, d] of delayers) out[name] = await d.stats();
  return out;
}

/** Resolves once every delayer listens on its queue. */
export async function shapingReady(): Promise<void> {
  await Promise.all([...delayers.values()].map((d) => d.ready));
}

function shapeEnd(ns: string, dev: string, s: Shape): void {
  const args = ['qdisc', 'replace', 'dev', dev, 'root', 'netem', 'delay', `${s.delayMs}ms`];
  if (s.lossPct > 0) args.push('loss', `${s.lossPct}%`);
  // netem's default queue (1,000 packets) drops bursts of a busy link.
  args.push('limit', '100000');
  inNs(ns, 'tc', ...args);
}

/**
 * Mechanism `nfqueue`: the host's outgoing packets on its link (not loopback) dropped with
 * probability `lossPct` and then, when `delayMs` > 0, queued to its delayer. A packet from one
 * host to another leaves through its sender's rules only: delayed `delayMs`, lost `lossPct`.
 */
function shapeEgress(h: Host, s: Shape): void {
  inNs(h.ns, 'iptables', '-F', 'OUTPUT');
  // Rules on the packets the host sends on its link, in order.
  const onEgress = (...rule: string[]) =>
    inNs(h.ns, 'iptables', '-A', 'OUTPUT', '-o', 'eth0', ...rule);
  if (s.lossPct > 0)
    onEgress(
      '-m',
      'statistic',
      '--mode',
      'random',
      '--probability',
      String(s.lossPct / 100),
      '-j',
      'DROP',
    );
  delayers.get(h.name)?.setDelay(s.delayMs);
  if (s.delayMs > 0)
    // --queue-bypass: were the delayer gone, packets would pass undelayed rather than be dropped.
    onEgress('-j', 'NFQUEUE', '--queue-num', '0', '--queue-bypass');
}

/** Packets the loss rules dropped so far, all hosts (mechanism `nfqueue`; 0 otherwise). */
export function droppedPackets(t: Topology): number {
  if (shapingMechanism() !== 'nfqueue') return 0;
  let n = 0;
  for (const h of allHosts(t))
    for (const line of inNs(h.ns, 'iptables', '-L', 'OUTPUT', '-v', '-x', '-n').split('\n'))
      if (/\bDROP\b/.test(line)) n += Number(line.trim().split(/\s+/)[0]) || 0;
  return n;
}

/**
 * Builds the namespaces and links; every link delayed `shape.delayMs` each way (`shapingReady()`
 * resolves when the delay is in force).
 */
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
    if (shapingMechanism() === 'nfqueue') delayers.set(h.name, new Delayer(h));
  }
  shapeAll(t, shape);
}

/**
 * Every link delayed `delayMs` and lossy `lossPct` each way. With netem: half the delay on the
 * host's end, half on the hub's (a packet from one host to another crosses its sender's end and its
 * receiver's hub end); loss likewise split. With nfqueue: all of it on the sender's way out.
 */
export function shapeAll(t: Topology, shape: Shape): void {
  for (const h of allHosts(t)) shapeHost(h, shape);
}

export function shapeHost(h: Host, s: Shape): void {
  const m = shapingMechanism();
  if (m === 'nfqueue') return shapeEgress(h, s);
  if (m !== 'netem') return;
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
