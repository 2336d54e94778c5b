// A TCP proxy between a client and Postgres that can freeze: it stops forwarding both ways and
// keeps every socket open, so neither side sees a FIN or a reset. To the server the client is
// lost without a trace (its kernel still acknowledges, so keepalives pass), as a client cut off
// by a network partition, a dead NAT entry or a frozen VM would be; no iptables, no root.
import net from 'node:net';

export interface FreezingProxy {
  /** `url` (a Postgres connection string) with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  readonly port: number;
  /** Connections it forwards (or holds frozen) now. */
  readonly connections: number;
  /** Stops forwarding, both ways, on every connection (and on those that come later). */
  freeze(): void;
  /** Forwards again what was held, and what comes next. */
  thaw(): void;
  /** Destroys every connection (both sides see it close) and stops listening. */
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (a free port) and forwards each connection to `target`. */
export async function startFreezingProxy(target: {
  host: string;
  port: number;
}): Promise<FreezingProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let frozen = false;
  const link = (p: { client: net.Socket; upstream: net.Socket }) => {
    p.client.pipe(p.upstream);
    p.upstream.pipe(p.client);
  };
  const hold = (p: { client: net.Socket; upstream: net.Socket }) => {
    p.client.unpipe(p.upstream);
    p.upstream.unpipe(p.client);
    p.client.pause();
    p.upstream.pause();
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    if (frozen) hold(pair);
    else link(pair);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    get connections() {
      return pairs.size;
    },
    urlFor(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    freeze() {
      frozen = true;
      for (const p of pairs) hold(p);
    },
    thaw() {
      frozen = false;
      for (const p of pairs) link(p);
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
