// What keeps a browser's other tabs out of an API without authentication (loopback by default,
// everyone `anonymous`): a page of another site may make the browser send requests to it, and
// DNS rebinding may even make them look same-origin. Without a credential to require, the API
// answers only
// - requests whose `Host` is a name it serves (the bound address, loopback names, PUBLIC_URL's
//   host, ALLOWED_HOSTS): a rebound name is refused (421 `host_refused`), for every request, the
//   page, the REST API and the Socket.IO handshake alike;
// - writes and Socket.IO handshakes without an `Origin`, or from its own origin (the one the
//   request was sent to, PUBLIC_URL's, CORS_ORIGINS): 403 `origin_refused` otherwise;
// - writes that say `Content-Type: application/json`, with a body or without (hardening.ts), which
//   a page of another origin cannot send without asking first (a CORS preflight, refused).
// With authentication none of this is needed: a bearer token is never sent by the browser on its
// own. The callback URLs are left out of the write checks: their token is their credential.
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { errorBody } from './errors.ts';
import { matcher, type Route } from './route.ts';

export interface SiteOptions {
  /** The address the API binds to (HOST). */
  host: string;
  /** ALLOWED_HOSTS: `name` (any port) or `name:port`, lower case. */
  allowedHosts?: readonly string[];
  /** PUBLIC_URL: its host is served, its origin is the API's own. */
  publicUrl?: string | undefined;
  /** CORS_ORIGINS: origins whose pages may write too. */
  corsOrigins?: readonly string[];
}

export interface SitePolicy {
  /** Whether the request's `Host` names this API (a request without one, from no browser, does). */
  hostAllowed(req: IncomingMessage): boolean;
  /** Whether the request's `Origin` may write (none: not sent by a browser). */
  originAllowed(req: IncomingMessage): boolean;
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

/** A host as a `Host` header writes it: IPv6 addresses in brackets, lower case. */
const bracketed = (address: string) => {
  const a = address.toLowerCase().replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  return a.includes(':') && !a.startsWith('[') ? `[${a}]` : a;
};

/** `name` and `port` of a `Host` header value (`port` empty when it names none). */
function splitHost(value: string): { name: string; port: string } {
  const v = value.trim().toLowerCase();
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(v);
  return { name: m?.[1] ?? v, port: m?.[2] ?? '' };
}

/** The origin's scheme://host[:port] with its default port left out, as browsers send it. */
function normalOrigin(origin: string): string | undefined {
  try {
    const u = new URL(origin);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

export function sitePolicy(o: SiteOptions): SitePolicy {
  const names = new Set([...LOOPBACK_NAMES, bracketed(o.host)]);
  const withPort = new Set<string>();
  for (const entry of o.allowedHosts ?? []) {
    const { name, port } = splitHost(entry);
    if (port) withPort.add(`${name}:${port}`);
    else names.add(name);
  }
  const own = new Set<string>();
  if (o.publicUrl) {
    const u = new URL(o.publicUrl);
    names.add(u.hostname.toLowerCase());
    own.add(u.origin);
  }
  for (const c of o.corsOrigins ?? []) {
    const n = normalOrigin(c);
    if (n) own.add(n);
  }
  const wildcard = WILDCARDS.has(o.host);

  return {
    hostAllowed(req) {
      const header = req.headers.host;
      if (header === undefined) return true;
      const { name, port } = splitHost(header);
      if (names.has(name) || withPort.has(`${name}:${port}`)) return true;
      // Bound to every address: the address the connection came in on is one it serves.
      const local = req.socket.localAddress;
      return wildcard && local !== undefined && bracketed(local) === name;
    },
    originAllowed(req) {
      const origin = req.headers.origin;
      if (origin === undefined) return true;
      const normal = normalOrigin(origin);
      if (normal === undefined) return false; // `null` (a sandboxed frame, a file), or garbage
      if (own.has(normal)) return true;
      // The origin the request was sent to (its Host was checked first).
      const host = req.headers.host;
      if (host === undefined) return false;
      try {
        return new URL(normal).host === new URL(`http://${host}`).host;
      } catch {
        return false;
      }
    },
  };
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** The routes whose writes are checked: all but the open ones (callback URLs). */
export const checkedWrites = (routes: readonly Route[]) =>
  routes.filter((r) => r.method !== 'get' && (r.auth ?? 'bearer') !== 'open');

/** Refuses a request whose `Host` is not one of the API's (421 `host_refused`). */
export function hostCheck(policy: SitePolicy): RequestHandler {
  return (req, res, next) => {
    if (policy.hostAllowed(req)) return next();
    res
      .status(421)
      .json(
        errorBody(
          'host_refused',
          `This API does not answer to the host ${JSON.stringify(req.headers.host)}: add it to ALLOWED_HOSTS`,
        ),
      );
  };
}

/** Refuses a write to one of `routes` from a page of another origin (403 `origin_refused`). */
export function originCheck(policy: SitePolicy, routes: readonly Route[]): RequestHandler {
  const isChecked = matcher(checkedWrites(routes));
  return (req, res, next) => {
    if (!WRITES.has(req.method) || !isChecked(req.method, req.originalUrl)) return next();
    if (policy.originAllowed(req)) return next();
    res
      .status(403)
      .json(
        errorBody(
          'origin_refused',
          `Writes from a page of ${JSON.stringify(req.headers.origin)} are refused: add it to CORS_ORIGINS`,
        ),
      );
  };
}
