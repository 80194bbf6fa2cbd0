/** Rendering-node routes: telemetry in, and "this session is over" reports. Each node uses its own token. */
import { VcaError } from '../../errors.js';
import type { FleetService } from '../../scaling/fleet-service.js';
import type { SessionService } from '../../sessions/session-service.js';
import type { StateStore } from '../../state/state-store.js';
import { type ApiRoute, defineRoute, json, jsonBody } from '../api-routes.js';
import { TelemetryReportSchema } from '../api-schemas.js';

export interface NodeRouteDeps {
  fleet: FleetService;
  sessions: SessionService;
  store: StateStore;
}

export function nodeRoutes(deps: NodeRouteDeps): ApiRoute[] {
  const { fleet, sessions, store } = deps;
  return [
    defineRoute({
      method: 'PUT',
      path: '/v1/nodes/:id/telemetry',
      access: 'node',
      summary:
        'Report GPU telemetry (what gpu-probe pushes every interval); the answer lists the sessions placed on the node',
      body: jsonBody(TelemetryReportSchema),
      responses: {
        200: 'Accepted: node state, GPU eligibility, sessions the VCA placed on the node',
        404: 'Unknown node',
        422: 'Unknown GPU index',
      },
      async handler(ctx, report) {
        const { node, sessions: placed } = await fleet.recordTelemetryWithSessions(ctx.params.id!, report);
        return json(200, {
          nodeId: node.id,
          state: node.state,
          gpus: node.gpus.map((gpu) => ({ index: gpu.index, eligible: gpu.eligible, stale: gpu.stale })),
          // Lets the node reconcile what it runs with what the VCA committed (and drives --simulate).
          sessions: placed.map((session) => ({
            sessionId: session.id,
            gpu: session.placement?.gpuIndex ?? null,
            game: session.game,
            width: session.width,
            height: session.height,
            fps: session.fps,
          })),
        });
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/nodes/:id/sessions/:sid/ended',
      access: 'node',
      summary: 'The node reports a session over; idempotent',
      responses: {
        200: 'Ended (or already ended)',
        404: 'Unknown session',
        409: 'The session is not on this node',
      },
      async handler(ctx) {
        const nodeId = ctx.params.id!;
        const sessionId = ctx.params.sid!;
        const session = await store.getSession(sessionId);
        if (!session)
          throw new VcaError('VCA_ERR_SESSION_NOT_FOUND', `Session "${sessionId}" does not exist`);
        if (session.placement?.nodeId !== nodeId) {
          throw new VcaError(
            'VCA_ERR_NODE_STATE',
            `Session "${sessionId}" is not placed on node "${nodeId}"`,
          );
        }
        if (session.state === 'ended') return json(200, { sessionId, ended: true, alreadyEnded: true });
        const ended = await sessions.end(sessionId, 'node-reported-ended');
        return json(200, { sessionId, ended: true, alreadyEnded: ended === undefined });
      },
    }),
  ];
}
