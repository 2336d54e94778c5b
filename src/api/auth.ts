// Authentication: static bearer tokens (API_TOKENS, API_TOKENS_FILE) and OIDC bearer JWTs
// (OIDC_ISSUER, OIDC_AUDIENCE) verified with jose against the issuer's JWKS. Who made a request
// becomes its Actor: the name recorded as createdBy, and the roles and claims the workflows'
// authorization hooks see.
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
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
function oidcVerifier(
  issuer: string,
  audience: string | undefined,
  maxLifetimeSeconds: number,
  logger: Logger,
) {
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
        // A token without an expiry would be good for ever, wherever it leaked.
        requiredClaims: ['exp'],
      });
      const exp = payload.exp!;
      const from = typeof payload.iat === 'number' ? payload.iat : Date.now() / 1000;
      if (exp - from > maxLifetimeSeconds)
        throw new Error(
          `the token's lifetime (${Math.round(exp - from)} s) is longer than OIDC_MAX_TOKEN_LIFETIME_SECONDS (${maxLifetimeSeconds})`,
        );
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
    ? oidcVerifier(
        config.OIDC_ISSUER,
        config.OIDC_AUDIENCE,
        config.OIDC_MAX_TOKEN_LIFETIME_SECONDS,
        logger,
      )
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

/** When an actor's credential stops being valid (ms since the epoch): an OIDC token's `exp`. */
export function expiryOf(actor: Actor): number | undefined {
  const exp = actor.claims.exp;
  return typeof exp === 'number' ? exp * 1000 : undefined;
}

/** How many failed authentications are answered 401 before 429, in a window of `windowMs`. */
export interface FailureLimits {
  /** Failures from one address (`req.ip`: see TRUST_PROXY). */
  perAddress: number;
  /** Failures of one presented credential, from anywhere. */
  perCredential: number;
  windowMs: number;
}

export const DEFAULT_FAILURE_LIMITS: FailureLimits = {
  perAddress: 20,
  perCredential: 20,
  windowMs: 60_000,
};

/** Keys counted at most: past it, new keys are not counted until the window ends. */
const MAX_COUNTED_KEYS = 100_000;

/** Failures by key in fixed windows: every count starts again when the window ends. */
function failureCounter(windowMs: number) {
  let counts = new Map<string, number>();
  let endsAt = Date.now() + windowMs;
  const roll = () => {
    const now = Date.now();
    if (now < endsAt) return;
    counts = new Map();
    endsAt = now + windowMs;
  };
  return {
    get(key: string): number {
      roll();
      return counts.get(key) ?? 0;
    },
    add(key: string): number {
      roll();
      const n = (counts.get(key) ?? 0) + 1;
      if (n > 1 || counts.size < MAX_COUNTED_KEYS) counts.set(key, n);
      return n;
    },
    secondsLeft: () => Math.max(1, Math.ceil((endsAt - Date.now()) / 1000)),
  };
}

/**
 * Express middleware for `/api`: a valid bearer token or 401 `unauthorized` (nothing runs, so
 * nothing is written), except on the paths of the `open` routes of `routes`, whatever the method.
 *
 * Failures are counted per address and per presented credential (its digest): past either limit
 * in a window, a failure is answered 429 `too_many_requests` instead of 401, and a credential past
 * its own limit is refused without being checked again until the window ends. A valid token is
 * never refused for the failures of others, also when they share its address (a reverse proxy,
 * a NAT): it is checked, and passes.
 */
export function authenticate(
  auth: Authenticator,
  routes: readonly Route[],
  limits: FailureLimits = DEFAULT_FAILURE_LIMITS,
): RequestHandler[] {
  if (!auth.required) return [];
  const isOpen = matcher(routes.filter((r) => r.auth === 'open'));
  const open = (req: Request) => isOpen(undefined, req.originalUrl);
  const failures = failureCounter(limits.windowMs);
  const check = (req: Request, res: Response, next: NextFunction) => {
    if (open(req)) return next();
    const token = bearerOf(req.get('authorization'));
    const address = `address ${req.ip ?? req.socket.remoteAddress ?? ''}`;
    const credential =
      token === undefined ? undefined : `credential ${digest(token).toString('base64url')}`;
    const tooMany = () => {
      res.set('Retry-After', String(failures.secondsLeft()));
      res
        .status(429)
        .json(errorBody('too_many_requests', 'Too many failed authentications; try again later'));
    };
    const refuse = () => {
      const fromAddress = failures.add(address);
      const withCredential = credential === undefined ? 0 : failures.add(credential);
      if (fromAddress > limits.perAddress || withCredential > limits.perCredential)
        return tooMany();
      res.set('WWW-Authenticate', 'Bearer');
      res.status(401).json(errorBody('unauthorized', 'A valid bearer token is required'));
    };
    // Refused often enough already: not checked again (a client stuck with a wrong token).
    if (credential !== undefined && failures.get(credential) >= limits.perCredential)
      return tooMany();
    if (!token) return refuse();
    auth.verify(token).then((actor) => {
      if (!actor) return refuse();
      (req as Request & { actor?: Actor }).actor = actor;
      next();
    }, next);
  };
  return [check];
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
