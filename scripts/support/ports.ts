import { readFileSync } from 'node:fs';
import net from 'node:net';

/**
 * The ports the kernel hands out to outgoing connections (ip_local_port_range). A server that is
 * restarted on its port (an API, a Postgres) must not listen there: while it was down, a
 * client's outgoing connection could have taken the port as its own (EADDRINUSE at the restart).
 */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    // Not Linux: the IANA dynamic range.
  }
  return [49152, 65535];
}

const [ephemeralLow, ephemeralHigh] = ephemeralRange();
/** Where listening ports are picked: below the ephemeral range (or above it, when nothing is below). */
const [low, high] =
  ephemeralLow > 11_000 ? [10_000, ephemeralLow - 1] : [ephemeralHigh + 1, 65_535];

function listenable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A TCP port that was free a moment ago on 127.0.0.1, outside the ephemeral range, so that a
 * server can be restarted on it.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (await listenable(port)) return port;
  }
  throw new Error(`no free port found between ${low} and ${high}`);
}
