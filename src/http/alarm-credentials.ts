/**
 * Who may post Aodh alarm notifications, in three ways, best first:
 *
 * - A Keystone token in `X-Auth-Token`: what Aodh sends for a `trust+http(s)://` alarm action (Aodh's
 *   `TrustRestAlarmNotifier` authenticates as its service user with the trust the alarm's creator gave
 *   it and sends that token). Validated with Keystone (`src/openstack/keystone.ts`, cached), then
 *   held to `hooks.aodh.keystoneProjectIds` (the token's project) and `keystoneRoles` (all required).
 *   No secret in any URL.
 * - A per-alarm path token, `/v1/hooks/aodh/<token>`: an HMAC of the alarm id and the URL's direction
 *   under the orchestrator secret, checked against the body's `alarm_id` before anything changes. It is
 *   still in the URL (Aodh logs action URLs), but a leaked one speaks only for that alarm and direction.
 * - The shared hook secret (`X-VCA-Hook-Secret`, or `?secret=` unless `hooks.aodh.allowQuerySecret` is
 *   false): a leaked `?secret=` (Aodh logs it with the URL) is the orchestrator secret itself.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { VcaError } from '../errors.js';
import type { KeystoneClient } from '../openstack/keystone.js';
import type { Credentials, PresentedCredentials } from './credentials.js';

export interface AlarmCredentialsPolicy {
  /** Projects whose Keystone tokens may post alarms; empty: Keystone tokens are refused. */
  keystoneProjectIds: readonly string[];
  /** Roles a Keystone token must all carry. */
  keystoneRoles: readonly string[];
  /** Whether `?secret=` is still accepted on the Aodh hook. */
  allowQuerySecret: boolean;
}

export interface AlarmCredentialsOptions {
  credentials: Credentials;
  /** Key of the per-alarm path tokens (the orchestrator secret). */
  orchestratorSecret: string;
  policy: AlarmCredentialsPolicy;
  /** Absent when no Keystone is configured. */
  keystone?: KeystoneClient | undefined;
  logger?: Logger;
}

const pathTokenPrefix = 'a1.';

/**
 * The path token of one alarm's action URL: `a1.` and the base64url HMAC-SHA256, under the
 * orchestrator secret, of the alarm id and the direction the URL names (`up`, `down` or none).
 */
export function alarmPathToken(orchestratorSecret: string, alarmId: string, direction: string): string {
  const mac = createHmac('sha256', orchestratorSecret)
    .update(`vca-aodh-alarm-url/v1\n${alarmId}\n${direction.trim().toLowerCase()}`)
    .digest('base64url');
  return `${pathTokenPrefix}${mac}`;
}

export class AlarmCredentials {
  private readonly options: AlarmCredentialsOptions;

  constructor(options: AlarmCredentialsOptions) {
    this.options = options;
  }

  /** The check of `POST /v1/hooks/aodh`: a Keystone token if one is sent, else the hook secret. */
  async require(request: PresentedCredentials): Promise<void> {
    const token = request.headers['x-auth-token'];
    if (token !== undefined) {
      await this.requireKeystoneToken(token);
      return;
    }
    const { policy, credentials } = this.options;
    if (
      !policy.allowQuerySecret &&
      request.headers['x-vca-hook-secret'] === undefined &&
      request.query.has('secret')
    ) {
      throw new VcaError(
        'VCA_ERR_UNAUTHORIZED',
        '?secret= is turned off on the Aodh hook (hooks.aodh.allowQuerySecret: false): Aodh logs action URLs; use a trust+http alarm action (Keystone) or a per-alarm path token',
      );
    }
    credentials.requireHookSecret(request);
  }

  /**
   * The check of `POST /v1/hooks/aodh/<token>`, once the body is read: the token must be the one of
   * this alarm id and the direction in the URL's `?action=`.
   */
  requirePathToken(token: string, alarmId: string, query: URLSearchParams): void {
    const direction = query.get('action') ?? '';
    const expected = alarmPathToken(this.options.orchestratorSecret, alarmId, direction);
    const presented = Buffer.from(token);
    if (presented.length !== expected.length || !timingSafeEqual(presented, Buffer.from(expected))) {
      throw new VcaError(
        'VCA_ERR_UNAUTHORIZED',
        `The path token is not the one of alarm ${JSON.stringify(alarmId)} with this action; issue it with npm run aodh:alarm-url`,
      );
    }
  }

  private async requireKeystoneToken(token: string): Promise<void> {
    const { keystone, policy, logger } = this.options;
    if (keystone === undefined) {
      throw new VcaError(
        'VCA_ERR_UNAUTHORIZED',
        'An X-Auth-Token was sent but no Keystone is configured (openstack.keystone.url)',
      );
    }
    if (policy.keystoneProjectIds.length === 0) {
      throw new VcaError(
        'VCA_ERR_UNAUTHORIZED',
        'Keystone tokens are not accepted on the Aodh hook: list the projects allowed in hooks.aodh.keystoneProjectIds',
      );
    }
    if (token.length === 0 || token.length > 8192) {
      throw new VcaError('VCA_ERR_UNAUTHORIZED', 'The X-Auth-Token is empty or too long');
    }
    const info = await keystone.validate(token);
    if (info === null) {
      throw new VcaError(
        'VCA_ERR_UNAUTHORIZED',
        'Keystone does not know the X-Auth-Token (invalid, expired or revoked)',
      );
    }
    const projectId = info.project?.id;
    if (projectId === undefined || !policy.keystoneProjectIds.includes(projectId)) {
      logger?.warn(
        { projectId: projectId ?? null, userId: info.user?.id ?? null },
        'aodh hook: keystone token of a project not allowed',
      );
      throw new VcaError(
        'VCA_ERR_FORBIDDEN',
        `The token is scoped to ${projectId === undefined ? 'no project' : `project ${projectId}`}, which may not post alarms (hooks.aodh.keystoneProjectIds)`,
      );
    }
    const missing = policy.keystoneRoles.filter((role) => !info.roles.includes(role));
    if (missing.length > 0) {
      throw new VcaError(
        'VCA_ERR_FORBIDDEN',
        `The token lacks the role(s) ${missing.join(', ')} (hooks.aodh.keystoneRoles)`,
      );
    }
  }
}
