// Authentication: static bearer tokens (API_TOKENS, API_TOKENS_FILE) and OIDC bearer JWTs
// (OIDC_ISSUER, OIDC_AUDIENCE) verified with jose against the issuer's JWKS. Who made a request
// becomes its Actor: the name recorded as createdBy, and the roles and claims the workflows'
// authorization hooks see.
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Config } from '../config/index.ts';
import type { Logger } from '../config/logger.ts';
import { ANONYMOUS, type Actor } from '../engine/actor.ts';
import { errorBody } from './errors.ts';
import { matcher, type Route } from './route.ts';

export interface Authenticator {
  /** Whether any credential is required (false: AUTH=none, or nothing configured on loopback). */
  readonly required: boolean;
  /** The actor of a bearer token, or undefined when it is not valid. */
  verify(token: string): Promise<Actor | undefined>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Parses `name=token` pairs (comma- or newline-separated); a bad entry fails start-up. */
export function parseTokens(spec: string, source: string): Map<string, string> {
  const tokens = new Map<string, string>();
  for (const raw of spec.split(/[,\n]/)) {
    const entry = raw.trim();
    if (!entry || entry.startsWith('#')) continue;
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq).trim();
    const token = entry.slice(eq + 1).trim();
    if (eq <= 0 || !name || token.length < 16)
      throw new Error(
        `${source}: each entry must be name=token with a token of at least 16 characters (got ${JSON.stringify(entry.slice(0, Math.max(eq, 0)) || entry.slice(0, 8))}…)`,
      );
    tokens.set(token, name);
  }
  return tokens;
}

/** The roles a token's claims carry: `roles`, Keycloak's `realm_access.roles`, or `groups`. */
export function rolesOf(claims: JWTPayload): string[] {
  const lists = [
    claims.roles,
    (claims.realm_access as { roles?: unknown } | undefined)?.roles,
    claims.groups,
  ];
  return [
    ...new Set(
      lists.flatMap((l) => (Array.isArray(l) ? l : [])).filter((r) => typeof r === 'string'),
    ),
  ] as string[];
}

/** Static tokens: each compared in constant time (digests of equal length), all of them always. */
function staticVerifier(tokens: Map<string, string>) {
  const entries = [...tokens].map(([token, name]) => ({ hash: digest(token), name }));
  return (token: string): Actor | undefined => {
    const given = digest(token);
    let found: string | undefined;
    for (const e of entries) if (timingSafeEqual(e.hash, given)) found ??= e.name;
    return found === undefined ? undefined : { name: found, roles: [], claims: {} };
  };
}

/**
 * OIDC: the issuer's JWKS found through its discovery document (once, then cached); jose
 * caches the keys and fetches them again when a token names a key it does not know (rotation).
 */
function oidcVerifier(issuer: string, audience: string | undefined, logger: Logger) {
  let jwks: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  const keys = () => {
    jwks ??= (async () => {
      const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      if (!res.ok) throw new Error(`OIDC discovery at ${url} answered ${res.status}`);
      const doc = (await res.json()) as { jwks_uri?: string; issuer?: string };
      if (!doc.jwks_uri) throw new Error(`OIDC discovery at ${url} names no jwks_uri`);
      return createRemoteJWKSet(new URL(doc.jwks_uri), { cooldownDuration: 5_000 });
    })().catch((err: unknown) => {
      jwks = undefined; // Tried again with the next token.
      throw err;
    });
    return jwks;
  };
  return async (token: string): Promise<Actor | undefined> => {
    try {
      const { payload } = await jwtVerify(token, await keys(), {
        issuer,
        ...(audience ? { audience } : {}),
      });
      const name =
        typeof payload.preferred_username === 'string' ? payload.preferred_username : payload.sub;
      if (!name) return undefined;
      return { name, roles: rolesOf(payload), claims: payload as Record<string, unknown> };
    } catch (err) {
      logger.debug('bearer token refused', { reason: (err as Error).message });
      return undefined;
    }
  };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * The authenticator the configuration asks for. Without any, the API may only listen on loopback:
 * binding elsewhere fails with how to configure it, unless AUTH=none says so on purpose.
 */
export function createAuthenticator(config: Config, logger: Logger): Authenticator {
  const tokens = new Map<string, string>();
  if (config.API_TOKENS)
    for (const [t, n] of parseTokens(config.API_TOKENS, 'API_TOKENS')) tokens.set(t, n);
  if (config.API_TOKENS_FILE) {
    const text = fs.readFileSync(config.API_TOKENS_FILE, 'utf8');
    for (const [t, n] of parseTokens(text, config.API_TOKENS_FILE)) tokens.set(t, n);
  }
  const byToken = tokens.size > 0 ? staticVerifier(tokens) : undefined;
  const byOidc = config.OIDC_ISSUER
    ? oidcVerifier(config.OIDC_ISSUER, config.OIDC_AUDIENCE, logger)
    : undefined;
  const configured = byToken !== undefined || byOidc !== undefined;
  if (!configured && config.AUTH !== 'none' && !LOOPBACK.has(config.HOST)) {
    throw new Error(
      `Refusing to listen on ${config.HOST} without authentication. Set API_TOKENS=name=<token>,… ` +
        '(or API_TOKENS_FILE), or OIDC_ISSUER (and OIDC_AUDIENCE); AUTH=none allows it on purpose.',
    );
  }
  if (!configured && config.AUTH === 'none' && !LOOPBACK.has(config.HOST))
    logger.warn('AUTH=none: the API accepts requests without credentials', { host: config.HOST });
  return {
    required: configured,
    async verify(token) {
      return byToken?.(token) ?? (await byOidc?.(token));
    },
  };
}

/** The bearer token of an Authorization header. */
export function bearerOf(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

/** The actor of a request that passed `authenticate` (anonymous when none is required). */
export function actorOf(req: Request): Actor {
  return (req as Request & { actor?: Actor }).actor ?? ANONYMOUS;
}

/**
 * Express middleware for `/api`: a valid bearer token or 401 `unauthorized` (nothing runs, so
 * nothing is written), except on the paths of the `open` routes of `routes`, whatever the method.
 * Failures are rate limited per address: after `maxFailures` a minute, 429 `too_many_requests`
 * until the window passes.
 */
export function authenticate(
  auth: Authenticator,
  routes: readonly Route[],
  maxFailures = 20,
): RequestHandler[] {
  if (!auth.required) return [];
  const isOpen = matcher(routes.filter((r) => r.auth === 'open'));
  const open = (req: Request) => isOpen(undefined, req.originalUrl);
  const limiter = rateLimit({
    windowMs: 60_000,
    limit: maxFailures,
    // Only failed authentications count.
    requestWasSuccessful: (_req, res) => res.statusCode !== 401,
    skipSuccessfulRequests: true,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (_req, res) => {
      res
        .status(429)
        .json(errorBody('too_many_requests', 'Too many failed authentications; try again later'));
    },
  });
  const check = (req: Request, res: Response, next: NextFunction) => {
    if (open(req)) return next();
    const token = bearerOf(req.get('authorization'));
    const refuse = () => {
      res.set('WWW-Authenticate', 'Bearer');
      res.status(401).json(errorBody('unauthorized', 'A valid bearer token is required'));
    };
    if (!token) return refuse();
    auth.verify(token).then((actor) => {
      if (!actor) return refuse();
      (req as Request & { actor?: Actor }).actor = actor;
      next();
    }, next);
  };
  return [(req, res, next) => (open(req) ? next() : limiter(req, res, next)), check];
}

const sameSecret = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** The check of the `metricsToken` routes: with a token set, only `Bearer <token>` passes. */
export function metricsTokenCheck(token: string | undefined): RequestHandler {
  return (req, res, next) => {
    if (token !== undefined) {
      const given = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
      if (!sameSecret(given, token)) {
        res.status(401).json(errorBody('unauthorized', 'A valid metrics token is required'));
        return;
      }
    }
    next();
  };
}
