// Who acts on a process: the name recorded as createdBy on processes and step rows, and what
// authorization hooks decide by (the token's roles and claims).
export interface Actor {
  /** The user recorded (a static token's name, or the OIDC token's preferred_username or sub). */
  name: string;
  /** Roles from the token's claims (`roles`, `realm_access.roles` or `groups`); none for static tokens. */
  roles: readonly string[];
  claims: Readonly<Record<string, unknown>>;
}

/** Everyone, where no authentication is configured. */
export const ANONYMOUS: Actor = Object.freeze({ name: 'anonymous', roles: [], claims: {} });

/** The actor of a callback URL (its token is the credential). */
export const CALLBACK: Actor = Object.freeze({ name: 'callback', roles: [], claims: {} });
