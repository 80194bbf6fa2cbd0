/**
 * Orchestrator webhooks: the VCA's own contextualization format (HMAC-signed), Aodh/Ceilometer alarms
 * and raw oslo / Ceilometer event notifications (shared secret: Aodh cannot sign). Every body is parsed
 * and validated whole before anything changes, and its effect is one all-or-nothing store step; replays
 * return the first applied result, and a refused event (4xx, nothing changed) is not remembered.
 */
import { VcaError } from '../../errors.js';
import type { AppliedHook, HookService } from '../../hooks/hook-service.js';
import { parseAodhAlarm, parseContextualize, parseNotifications } from '../../hooks/index.js';
import type { OrchestrationEvent } from '../../hooks/orchestration-event.js';
import {
  AodhAlarmBodySchema,
  ContextualizeBodySchema,
  NotificationsBodySchema,
} from '../../hooks/schemas.js';
import type { VcaMetrics } from '../../metrics/vca-metrics.js';
import type { AlarmCredentials } from '../alarm-credentials.js';
import { type ApiRoute, defineRoute, json, parsedBody } from '../api-routes.js';
import type { SessionViews } from '../assignment-view.js';
import type { Credentials } from '../credentials.js';

export interface HookRouteDeps {
  hooks: HookService;
  credentials: Credentials;
  views: SessionViews;
  metrics: VcaMetrics;
  /** Checks the per-alarm path token of `/v1/hooks/aodh/:token`; without it that route answers 401. */
  alarmCredentials?: Pick<AlarmCredentials, 'requirePathToken'>;
  onApplied?: (event: OrchestrationEvent, applied: AppliedHook) => void;
}

export function hookRoutes(deps: HookRouteDeps): ApiRoute[] {
  const { hooks, credentials, views, metrics } = deps;

  async function apply(event: OrchestrationEvent) {
    const applied = await hooks.apply(event);
    const { outcome } = applied;
    metrics.webhookEvents.inc({
      source: event.source,
      action: outcome.action,
      outcome: applied.replayed ? 'replayed' : outcome.error ? 'rejected' : 'applied',
    });
    deps.onApplied?.(event, applied);
    if (outcome.error) {
      const { field } = outcome.error;
      throw new VcaError(outcome.error.code as never, outcome.error.detail, {
        ...(field === undefined ? {} : { field }),
        eventId: outcome.eventId,
        replayed: applied.replayed,
      });
    }
    return {
      ...outcome,
      // Node credentials are derived, not stored: a replay hands out the very same ones.
      registered: outcome.registered.map((node) => ({
        ...node,
        token: credentials.nodeToken(node.id),
        ticketKey: views.nodeKey(node.id).toString('hex'),
      })),
      replayed: applied.replayed,
    };
  }

  return [
    defineRoute({
      method: 'POST',
      path: '/v1/hooks/contextualize',
      access: 'signed-orchestrator',
      summary:
        'Scale-up registers nodes (answer carries each node token and ticket key); scale-down drains named nodes or picks victims for a count. Signed: X-VCA-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>',
      body: parsedBody(ContextualizeBodySchema, parseContextualize),
      responses: {
        200: 'Applied, or a replay of an applied event',
        401: 'Bad signature',
        400: 'Invalid body',
        404: 'A scale-down names a node that is not registered (`field` names it); nothing changed',
        409: 'A node conflicts with its registration or cannot drain (`field` names it); nothing changed',
        422: 'A GPU model is not in the catalog; nothing changed',
      },
      handler: async (_ctx, event) => json(200, await apply(event)),
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/hooks/aodh',
      access: 'alarm',
      summary:
        'Aodh / Ceilometer alarm bodies (today and the 2014 notification alarm); direction may ride in ?action=UP|DOWN. A Keystone token in X-Auth-Token (Aodh trust+http actions), or the hook secret',
      // The alarm URL's ?action=UP|DOWN is part of what the body means.
      body: parsedBody(AodhAlarmBodySchema, (alarm, request) => parseAodhAlarm(alarm, request.query)),
      responses: {
        200: 'Recorded or applied',
        401: 'Bad secret or Keystone token',
        403: 'Keystone token of a project or without roles not allowed',
        400: 'Invalid body',
        503: 'Keystone unreachable',
      },
      handler: async (_ctx, event) => json(200, await apply(event)),
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/hooks/aodh/:token',
      access: 'alarm-path-token',
      summary:
        'The same Aodh alarm bodies, authenticated by a per-alarm path token (HMAC of the alarm id and ?action=, issued by npm run aodh:alarm-url)',
      body: parsedBody(AodhAlarmBodySchema, (alarm, request) => {
        // The token names the alarm, so it is checked once the body is read: before anything changes.
        const event = parseAodhAlarm(alarm, request.query);
        if (!deps.alarmCredentials)
          throw new VcaError('VCA_ERR_UNAUTHORIZED', 'Per-alarm path tokens are off');
        deps.alarmCredentials.requirePathToken(
          request.params.token ?? '',
          event.alarm?.id ?? '',
          request.query,
        );
        return event;
      }),
      responses: {
        200: 'Recorded or applied',
        401: 'Not the token of this alarm and action',
        400: 'Invalid body',
      },
      handler: async (_ctx, event) => json(200, await apply(event)),
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/hooks/notifications',
      access: 'orchestrator',
      summary:
        'Raw oslo notifications (also wrapped in oslo.message) and Ceilometer HTTP-publisher event arrays',
      body: parsedBody(NotificationsBodySchema, parseNotifications),
      responses: { 200: 'One result per event', 401: 'Bad secret', 400: 'Invalid body' },
      async handler(_ctx, events) {
        const results = [];
        for (const event of events) results.push(await apply(event));
        return json(200, { events: results });
      },
    }),
  ];
}
