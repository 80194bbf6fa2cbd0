/**
 * A Keystone v3 (OpenStack Identity) client: the VCA's own token from an application credential,
 * cached and renewed before it expires, the service catalog it came with, authorised calls that
 * re-authenticate once on 401, and validation of someone else's token (Aodh's `trust+http` sends one).
 *
 * Written against the published Identity API v3 reference
 * (https://docs.openstack.org/api-ref/identity/v3/): `POST /v3/auth/tokens` with the
 * `application_credential` method answers 201 with the token in the `X-Subject-Token` header and
 * `{token: {expires_at, catalog, ...}}` in the body; `GET /v3/auth/tokens` with the caller's token in
 * `X-Auth-Token` and the token to check in `X-Subject-Token` answers 200 with the same body for a valid
 * token and 404 for one that is invalid, expired or revoked (`?nocatalog` leaves the catalog out).
 *
 * Secrets (the credential's secret, tokens) never appear in a log line or an error message.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../clock.js';
import type { KeystoneConfig } from '../config/schema.js';
import { VcaError } from '../errors.js';

/** An application credential, by id, or by name with its owner (id, or name and domain). */
export type ApplicationCredential =
  | { id: string; secret: string }
  | {
      name: string;
      secret: string;
      user: { id: string } | { name: string; domain: { id: string } | { name: string } };
    };

export type EndpointInterface = 'public' | 'internal' | 'admin';

export interface KeystoneClientOptions {
  /** The Identity endpoint, with or without its `/v3` suffix (`http://keystone:5000/v3`). */
  url: string;
  credential: ApplicationCredential;
  /** Defaults for catalog look-ups. */
  region?: string;
  interface?: EndpointInterface;
  /** A token is renewed once it has less than this left (so a call never carries one about to expire). */
  renewBeforeSeconds?: number;
  /** A positive validation is reused at most this long (and never past the token's own expiry). */
  validationCacheSeconds?: number;
  /** Most validations kept; the oldest goes first. */
  validationCacheSize?: number;
  timeoutMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

export interface CatalogEndpoint {
  interface: string;
  region: string | null;
  url: string;
}

export interface CatalogService {
  type: string;
  name: string | null;
  endpoints: CatalogEndpoint[];
}

/** What Keystone says about a validated token. */
export interface TokenInfo {
  expiresAt: number;
  user: { id: string; name: string | null } | null;
  project: { id: string; name: string | null; domainId: string | null; domainName: string | null } | null;
  /** Role names. */
  roles: string[];
  /** The trust the token was issued from (Aodh's `trust+http` tokens carry one). */
  trustId: string | null;
}

interface ServiceToken {
  value: string;
  expiresAt: number;
  catalog: CatalogService[];
}

const defaultRenewBeforeSeconds = 300;
const defaultValidationCacheSeconds = 60;
const defaultValidationCacheSize = 1000;
const defaultTimeoutMs = 5000;

function unavailable(detail: string): VcaError {
  return new VcaError('VCA_ERR_IDENTITY_UNAVAILABLE', detail);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** `expires_at` as ms since the epoch; Keystone writes ISO 8601 in UTC (`2026-11-29T18:00:00.000000Z`). */
function parseExpiry(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : at;
}

function parseCatalog(value: unknown): CatalogService[] {
  if (!Array.isArray(value)) return [];
  const services: CatalogService[] = [];
  for (const entry of value) {
    if (!isRecord(entry) || typeof entry.type !== 'string' || !Array.isArray(entry.endpoints)) continue;
    const endpoints: CatalogEndpoint[] = [];
    for (const endpoint of entry.endpoints) {
      if (!isRecord(endpoint) || typeof endpoint.url !== 'string' || typeof endpoint.interface !== 'string')
        continue;
      // `region_id` is the current field; `region` its deprecated twin. Either may be what an old cloud sends.
      const region = stringOrNull(endpoint.region_id) ?? stringOrNull(endpoint.region);
      endpoints.push({ interface: endpoint.interface, region, url: endpoint.url });
    }
    services.push({ type: entry.type, name: stringOrNull(entry.name), endpoints });
  }
  return services;
}

function parseTokenInfo(token: Record<string, unknown>, expiresAt: number): TokenInfo {
  const user = isRecord(token.user) && typeof token.user.id === 'string' ? token.user : null;
  const project = isRecord(token.project) && typeof token.project.id === 'string' ? token.project : null;
  const projectDomain = project && isRecord(project.domain) ? project.domain : null;
  const roles = Array.isArray(token.roles)
    ? token.roles.flatMap((role) => (isRecord(role) && typeof role.name === 'string' ? [role.name] : []))
    : [];
  const trust = token['OS-TRUST:trust'];
  return {
    expiresAt,
    user: user ? { id: user.id as string, name: stringOrNull(user.name) } : null,
    project: project
      ? {
          id: project.id as string,
          name: stringOrNull(project.name),
          domainId: stringOrNull(projectDomain?.id),
          domainName: stringOrNull(projectDomain?.name),
        }
      : null,
    roles,
    trustId: isRecord(trust) ? stringOrNull(trust.id) : null,
  };
}

/** The identity block of an application-credential authentication request. */
function credentialBody(credential: ApplicationCredential): Record<string, unknown> {
  const applicationCredential =
    'id' in credential
      ? { id: credential.id, secret: credential.secret }
      : { name: credential.name, user: credential.user, secret: credential.secret };
  return {
    auth: {
      identity: { methods: ['application_credential'], application_credential: applicationCredential },
    },
  };
}

/** The Identity base URL ending in `/v3`, without a trailing slash. */
function identityBase(url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return trimmed.endsWith('/v3') ? trimmed : `${trimmed}/v3`;
}

export class KeystoneClient {
  private readonly base: string;
  private readonly credential: ApplicationCredential;
  private readonly region: string | undefined;
  private readonly interfaceName: EndpointInterface;
  private readonly renewBeforeMs: number;
  private readonly validationCacheMs: number;
  private readonly validationCacheSize: number;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger | undefined;
  private readonly fetchImpl: typeof fetch;
  private current: ServiceToken | null = null;
  /** The authentication in flight, shared by every caller that needs a token meanwhile. */
  private pending: Promise<ServiceToken> | null = null;
  /** Bumped by invalidate(): an authentication started before it must not install its token after it. */
  private generation = 0;
  /** sha256(subject token) -> validation; a Map keeps insertion order, so the first key is the oldest. */
  private readonly validations = new Map<string, { info: TokenInfo; until: number }>();

  constructor(options: KeystoneClientOptions) {
    this.base = identityBase(options.url);
    this.credential = options.credential;
    this.region = options.region || undefined;
    this.interfaceName = options.interface ?? 'public';
    this.renewBeforeMs = (options.renewBeforeSeconds ?? defaultRenewBeforeSeconds) * 1000;
    this.validationCacheMs = (options.validationCacheSeconds ?? defaultValidationCacheSeconds) * 1000;
    this.validationCacheSize = options.validationCacheSize ?? defaultValidationCacheSize;
    this.timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** The VCA's own token: the cached one while it has more than the renewal margin left, else a new one. */
  async token(): Promise<string> {
    return (await this.serviceToken()).value;
  }

  /** Forgets the cached token (after a 401 with it, say); the next call authenticates again. */
  invalidate(): void {
    this.current = null;
    this.pending = null;
    this.generation += 1;
  }

  /**
   * The URL of a service's endpoint from the catalog of the current token: `serviceType` as Keystone
   * names it (`orchestration` for Heat), the interface and region given or configured. Throws
   * VCA_ERR_IDENTITY_UNAVAILABLE naming what is missing when the catalog has no such endpoint.
   */
  async endpoint(serviceType: string, options: { interface?: EndpointInterface; region?: string } = {}) {
    const { catalog } = await this.serviceToken();
    const wantedInterface = options.interface ?? this.interfaceName;
    const wantedRegion = options.region ?? this.region;
    const service = catalog.find((entry) => entry.type === serviceType);
    const match = service?.endpoints.find(
      (endpoint) =>
        endpoint.interface === wantedInterface &&
        (wantedRegion === undefined || endpoint.region === wantedRegion),
    );
    if (!match) {
      const where = `interface ${wantedInterface}${wantedRegion === undefined ? '' : `, region ${wantedRegion}`}`;
      throw unavailable(
        service
          ? `the Keystone catalog has no ${serviceType} endpoint for ${where}`
          : `the Keystone catalog has no service of type ${serviceType}`,
      );
    }
    return match.url.replace(/\/+$/, '');
  }

  /**
   * A call carrying the VCA's token in `X-Auth-Token`. A 401 means the token was revoked or expired
   * early: the token is dropped, a new one obtained and the call sent once more; its answer is final.
   * Network errors and timeouts throw VCA_ERR_IDENTITY_UNAVAILABLE; every other answer is returned.
   */
  async authorizedFetch(url: string, init: RequestInit = {}): Promise<Response> {
    const first = await this.sendWithToken(url, init);
    if (first.status !== 401) return first;
    await first.arrayBuffer().catch(() => undefined);
    this.logger?.warn({ url: redactQuery(url) }, 'keystone token refused with 401; authenticating again');
    this.invalidate();
    return this.sendWithToken(url, init);
  }

  /**
   * Checks a token someone else presented. Resolves to what Keystone says about it, or null when
   * Keystone answers that it is not valid (404: invalid, expired or revoked). A positive answer is
   * cached until the token expires or `validationCacheSeconds` pass, whichever is first; a negative one
   * is not. Keystone unreachable, 5xx, an unreadable answer, or Keystone refusing the VCA itself (401
   * after the retry, 403) throws VCA_ERR_IDENTITY_UNAVAILABLE: that is the VCA's problem, not the
   * caller's. Keystone's default policy lets a caller validate someone else's token only with the
   * `service` role or as a system reader (`identity:validate_token` in keystone/common/policies/token.py).
   */
  async validate(subjectToken: string): Promise<TokenInfo | null> {
    const key = createHash('sha256').update(subjectToken).digest('base64url');
    const now = this.clock.now();
    const cached = this.validations.get(key);
    if (cached && cached.until > now) return cached.info;
    if (cached) this.validations.delete(key);

    const response = await this.authorizedFetch(`${this.base}/auth/tokens?nocatalog`, {
      method: 'GET',
      headers: { 'x-subject-token': subjectToken },
    });
    if (response.status !== 200) await response.arrayBuffer().catch(() => undefined);
    if (response.status === 404) return null;
    if (response.status === 403) {
      throw unavailable(
        "Keystone refused to validate the token (403): the VCA's application credential needs the service role (or system reader) to validate others' tokens",
      );
    }
    if (response.status !== 200) {
      throw unavailable(`Keystone answered token validation with HTTP ${response.status}`);
    }
    const body = await this.readJson(response, 'token validation');
    const token = isRecord(body) && isRecord(body.token) ? body.token : null;
    const expiresAt = token ? parseExpiry(token.expires_at) : null;
    if (!token || expiresAt === null)
      throw unavailable('Keystone answered token validation without token.expires_at');
    if (expiresAt <= this.clock.now()) return null;
    const info = parseTokenInfo(token, expiresAt);
    this.rememberValidation(key, info, Math.min(expiresAt, this.clock.now() + this.validationCacheMs));
    return info;
  }

  private rememberValidation(key: string, info: TokenInfo, until: number): void {
    this.validations.delete(key);
    while (this.validations.size >= this.validationCacheSize) {
      const oldest = this.validations.keys().next().value;
      if (oldest === undefined) break;
      this.validations.delete(oldest);
    }
    this.validations.set(key, { info, until });
  }

  private async sendWithToken(url: string, init: RequestInit): Promise<Response> {
    const token = await this.token();
    const headers = new Headers(init.headers);
    headers.set('x-auth-token', token);
    try {
      return await this.fetchImpl(url, { ...init, headers, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw unavailable(`${redactQuery(url)} unreachable: ${(error as Error).message}`);
    }
  }

  private async serviceToken(): Promise<ServiceToken> {
    const current = this.current;
    if (current && current.expiresAt - this.renewBeforeMs > this.clock.now()) return current;
    if (!this.pending) {
      const generation = this.generation;
      const attempt = this.authenticate().then(
        (token) => {
          if (this.generation === generation) {
            this.current = token;
            this.pending = null;
          }
          return token;
        },
        (error: unknown) => {
          if (this.generation === generation) this.pending = null;
          throw error;
        },
      );
      this.pending = attempt;
    }
    return this.pending;
  }

  private async authenticate(): Promise<ServiceToken> {
    const url = `${this.base}/auth/tokens`;
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(credentialBody(this.credential)),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      this.logger?.warn({ url }, 'keystone unreachable');
      throw unavailable(`Keystone at ${url} is unreachable: ${(error as Error).message}`);
    }
    if (response.status !== 201 && response.status !== 200) {
      await response.arrayBuffer().catch(() => undefined);
      const hint =
        response.status === 401
          ? ': check the application credential (id or name and user, secret, not expired)'
          : '';
      this.logger?.warn({ url, status: response.status }, 'keystone refused to issue a token');
      throw unavailable(`Keystone answered authentication with HTTP ${response.status}${hint}`);
    }
    const value = response.headers.get('x-subject-token');
    const body = await this.readJson(response, 'authentication');
    const token = isRecord(body) && isRecord(body.token) ? body.token : null;
    const expiresAt = token ? parseExpiry(token.expires_at) : null;
    if (!value || !token || expiresAt === null)
      throw unavailable('Keystone answered authentication without X-Subject-Token or token.expires_at');
    this.logger?.info(
      { url, expiresAt: new Date(expiresAt).toISOString() },
      'keystone token obtained with the application credential',
    );
    return { value, expiresAt, catalog: parseCatalog(token.catalog) };
  }

  private async readJson(response: Response, what: string): Promise<unknown> {
    try {
      return JSON.parse(await response.text());
    } catch {
      throw unavailable(`Keystone answered ${what} with a body that is not JSON`);
    }
  }
}

/** A URL fit for a log line: no query string (where a secret could ride). */
function redactQuery(url: string): string {
  const at = url.indexOf('?');
  return at === -1 ? url : `${url.slice(0, at)}?…`;
}

/** Client options from the `openstack.keystone` configuration; null when no Keystone is configured. */
export function keystoneOptionsFromConfig(
  config: KeystoneConfig,
): Omit<KeystoneClientOptions, 'clock' | 'logger' | 'fetch'> | null {
  if (config.url === '') return null;
  const secret = config.applicationCredentialSecret;
  const credential: ApplicationCredential =
    config.applicationCredentialId !== ''
      ? { id: config.applicationCredentialId, secret }
      : {
          name: config.applicationCredentialName,
          secret,
          user:
            config.userId !== ''
              ? { id: config.userId }
              : { name: config.userName, domain: { name: config.userDomainName } },
        };
  return {
    url: config.url,
    credential,
    ...(config.region === '' ? {} : { region: config.region }),
    interface: config.interface,
    renewBeforeSeconds: config.renewBeforeSeconds,
    validationCacheSeconds: config.validationCacheSeconds,
    timeoutMs: config.timeoutSeconds * 1000,
  };
}
