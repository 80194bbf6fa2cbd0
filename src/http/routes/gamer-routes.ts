/** Gamer REST routes: request, read, heartbeat and end a session; read the catalog and the regions. */

import type { CatalogIndex } from '../../cost/catalog.js';
import { frameSizeName } from '../../cost/resolution.js';
import { VcaError } from '../../errors.js';
import type { RegionDirectory } from '../../fleet/region-directory.js';
import type { VcaMetrics } from '../../metrics/vca-metrics.js';
import { dropUnknownRegions } from '../../sessions/session-request.js';
import type { SessionService } from '../../sessions/session-service.js';
import type { StateStore } from '../../state/state-store.js';
import { type ApiRoute, defineRoute, json, jsonBody } from '../api-routes.js';
import { SessionRequestSchema } from '../api-schemas.js';
import type { SessionViews } from '../assignment-view.js';

export interface GamerRouteDeps {
  sessions: SessionService;
  store: StateStore;
  catalog: CatalogIndex;
  views: SessionViews;
  metrics: VcaMetrics;
  regions: RegionDirectory;
}

export function gamerRoutes(deps: GamerRouteDeps): ApiRoute[] {
  const { sessions, store, views, metrics, regions } = deps;
  const catalogBody = {
    referenceGpu: deps.catalog.catalog.referenceGpu,
    games: [...deps.catalog.catalog.games.values()].map((game) => ({
      id: game.id,
      title: game.title,
      resolutions: game.resolutions.map(frameSizeName),
      fps: game.fps,
    })),
  };
  return [
    defineRoute({
      method: 'POST',
      path: '/v1/sessions',
      access: 'gamer',
      summary: 'Request a session: assigned (201), queued (202) or refused (503 with Retry-After)',
      body: jsonBody(SessionRequestSchema),
      responses: {
        201: 'Assigned: node endpoint, GPU, ticket, lease',
        202: 'Queued: position; heartbeat to keep the place, GET to see the assignment',
        400: 'Invalid body (latencies: at most 64 regions, each 0 < ms <= 10000)',
        422: 'Unknown game, resolution or frame rate not allowed',
        409: 'The gamer (identity token) already holds auth.maxSessionsPerGamer live sessions',
        503: 'No capacity and wait=false, or queue full',
      },
      async handler(ctx, body) {
        const started = process.hrtime.bigint();
        let outcomeLabel = 'refused';
        try {
          let ask = body;
          let warnings: string[] | undefined;
          if (body.latencies !== undefined) {
            const kept = dropUnknownRegions(body.latencies, await regions.knownRegions());
            ask = { ...body, latencies: kept.latencies };
            warnings = kept.warnings;
          }
          const outcome = await sessions.request(ask, 'rest', body.wait ?? true, ctx.gamer ?? null);
          outcomeLabel = outcome.kind;
          if (outcome.kind === 'assigned') {
            return json(201, await views.describe(outcome.session, warnings ? { warnings } : {}), {
              location: `/v1/sessions/${outcome.session.id}`,
            });
          }
          const extra = warnings ? { position: outcome.position, warnings } : { position: outcome.position };
          return json(202, await views.describe(outcome.session, extra), {
            location: `/v1/sessions/${outcome.session.id}`,
          });
        } finally {
          metrics.observeAllocation(outcomeLabel, Number(process.hrtime.bigint() - started) / 1e9);
        }
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/sessions/:id',
      access: 'gamer',
      summary: 'Read a session: queued with position, assigned with a fresh ticket, or ended with its reason',
      responses: { 200: 'The session', 404: "Unknown session, or another gamer's" },
      async handler(ctx) {
        const session = await sessions.get(ctx.params.id!, ctx.gamer ?? null);
        const position =
          session.state === 'queued' ? (await store.queuePositions()).get(session.id) : undefined;
        return json(200, await views.describe(session, position === undefined ? {} : { position }));
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/sessions/:id/heartbeat',
      access: 'gamer',
      summary: 'Renew the lease of a REST session (queued or assigned)',
      responses: {
        200: 'Renewed; the session as GET returns it',
        404: "Unknown session, or another gamer's",
        410: 'Session ended',
      },
      async handler(ctx) {
        const session = await sessions.heartbeat(ctx.params.id!, ctx.gamer ?? null);
        const position =
          session.state === 'queued' ? (await store.queuePositions()).get(session.id) : undefined;
        return json(200, await views.describe(session, position === undefined ? {} : { position }));
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/v1/sessions/:id',
      access: 'gamer',
      summary:
        'End a session (or leave the queue); a second DELETE is answered 404 or 410 and changes nothing',
      responses: { 200: 'Ended', 404: "Unknown session, or another gamer's", 410: 'Already ended' },
      async handler(ctx) {
        const id = ctx.params.id!;
        const gamer = ctx.gamer ?? null;
        const ended = await sessions.end(id, 'released', gamer);
        if (ended) return json(200, await views.describe(ended));
        // Unknown, or another gamer's (answered alike), or ended already.
        const known = await sessions.get(id, gamer);
        throw new VcaError('VCA_ERR_SESSION_ENDED', `Session "${id}" already ended (${known.endReason})`);
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/catalog',
      access: 'gamer',
      summary: 'Playable titles with their allowed resolutions and frame rates',
      responses: { 200: 'The catalog' },
      handler: () => json(200, catalogBody),
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/regions',
      access: 'gamer',
      summary:
        'Regions with ready rendering nodes, each with one ping URL to time a round trip to (for `latencies`)',
      responses: { 200: '{regions: [{region, pingUrl, nodes}]}' },
      handler: async () => json(200, { regions: await regions.readyRegions() }),
    }),
  ];
}
