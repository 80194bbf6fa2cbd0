/** Operator routes: the fleet, drains, the cluster summary; plus health, readiness and metrics. */

import type { AutoscalerConfig } from '../../config/schema.js';
import type { CatalogIndex } from '../../cost/catalog.js';
import { fullShare } from '../../cost/session-cost.js';
import { VcaError } from '../../errors.js';
import type { VcaMetrics } from '../../metrics/vca-metrics.js';
import { nodeFreeSlots } from '../../scaling/autoscaler-policy.js';
import type { FleetService } from '../../scaling/fleet-service.js';
import type { SessionService } from '../../sessions/session-service.js';
import type { StateStore } from '../../state/state-store.js';
import { type ApiRoute, defineRoute, json, jsonBody } from '../api-routes.js';
import { DrainRequestSchema } from '../api-schemas.js';
import { listSessionsForOperator, parseSessionFilter } from './operator-sessions.js';

export interface OperatorRouteDeps {
  fleet: FleetService;
  store: StateStore;
  /** Ending a session as the operator. */
  sessions: SessionService;
  catalog: CatalogIndex;
  metrics: VcaMetrics;
  autoscalerConfig: AutoscalerConfig;
  /** The autoscaler's last decision, if it runs. */
  autoscalerView: () => unknown;
  isReady: () => Promise<{ ready: boolean; reason?: string }>;
  /** auth.publicMetrics: /metrics is scraped without the operator token. */
  publicMetrics: boolean;
}

export function operatorRoutes(deps: OperatorRouteDeps): ApiRoute[] {
  const { fleet, store, metrics } = deps;
  return [
    defineRoute({
      method: 'GET',
      path: '/v1/nodes',
      access: 'operator',
      summary: 'Every node with its state, GPUs, committed, measured and effective load',
      responses: { 200: 'Nodes' },
      handler: async () => json(200, { nodes: await store.listNodes() }),
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/nodes/:id',
      access: 'operator',
      summary: 'One node, with the sessions it hosts',
      responses: { 200: 'The node', 404: 'Unknown node' },
      async handler(ctx) {
        const node = await store.getNode(ctx.params.id!);
        if (!node) throw new VcaError('VCA_ERR_NODE_NOT_FOUND', `Node "${ctx.params.id}" is not registered`);
        const sessions = await store.sessionsOnNode(node.id);
        return json(200, {
          ...node,
          sessionIds: sessions.map((session) => session.id),
        });
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/nodes/:id/drain',
      access: 'operator',
      summary:
        'Drain a node: no new sessions; at the deadline its sessions migrate; then drained and removed',
      // No body means defaults; a JSON `null` (or any non-object) is a bad body like any other.
      body: jsonBody(DrainRequestSchema, { whenAbsent: {} }),
      responses: { 200: 'Draining (or already drained if empty)', 404: 'Unknown node', 409: 'Not drainable' },
      async handler(ctx, body) {
        const deadlineMs = body.deadlineSeconds === undefined ? undefined : body.deadlineSeconds * 1000;
        return json(200, await fleet.drainNode(ctx.params.id!, deadlineMs));
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/v1/nodes/:id/undrain',
      access: 'operator',
      summary: 'Return a draining node to service',
      responses: { 200: 'Ready again', 404: 'Unknown node', 409: 'Not draining' },
      handler: async (ctx) => json(200, await fleet.undrainNode(ctx.params.id!)),
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/operator/sessions',
      access: 'operator',
      summary:
        'Live sessions (assigned, then queued in queue order), filtered by ?game=, ?node=, ?region=, ?state=queued|assigned; at most ?limit= (default 500, up to 5000)',
      responses: { 200: 'Sessions', 400: 'A bad filter' },
      handler: async (ctx) => json(200, await listSessionsForOperator(store, parseSessionFilter(ctx.query))),
    }),
    defineRoute({
      method: 'DELETE',
      path: '/v1/operator/sessions/:id',
      access: 'operator',
      summary: "End any gamer's session (or take it out of the queue) as the operator",
      responses: { 200: 'Ended', 404: 'Unknown session', 410: 'Already ended' },
      async handler(ctx) {
        const id = ctx.params.id!;
        const ended = await deps.sessions.end(id, 'cancelled');
        if (ended)
          return json(200, {
            sessionId: ended.id,
            state: ended.state,
            endReason: ended.endReason,
            node: ended.placement?.nodeId ?? null,
          });
        const known = await deps.sessions.get(id);
        throw new VcaError('VCA_ERR_SESSION_ENDED', `Session "${id}" already ended (${known.endReason})`);
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/v1/cluster',
      access: 'operator',
      summary: 'Capacity, committed load, queue and the autoscaler view',
      responses: { 200: 'Cluster summary' },
      async handler() {
        const nodes = await store.listNodes();
        const byState: Record<string, number> = {};
        let gpus = 0;
        let eligibleGpus = 0;
        let committedGpuShare = 0;
        let freeSlots = 0;
        for (const node of nodes) {
          byState[node.state] = (byState[node.state] ?? 0) + 1;
          freeSlots += nodeFreeSlots(node, deps.autoscalerConfig, (name) => deps.catalog.findModel(name));
          for (const gpu of node.gpus) {
            gpus++;
            if (gpu.eligible) eligibleGpus++;
            committedGpuShare += gpu.committed.gpu / fullShare;
          }
        }
        const audit = await store.audit();
        return json(200, {
          nodes: { total: nodes.length, byState },
          gpus: { total: gpus, eligible: eligibleGpus },
          committed: { gpuEquivalents: Math.round(committedGpuShare * 1000) / 1000 },
          capacity: {
            freeReferenceSlots: freeSlots,
            referenceSlotShare: deps.autoscalerConfig.referenceSlotShare,
          },
          sessions: { assigned: audit.liveSessions, queued: audit.queuedSessions },
          autoscaler: deps.autoscalerView(),
        });
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/metrics',
      access: deps.publicMetrics ? 'public' : 'operator',
      summary: 'Prometheus metrics (operator token unless auth.publicMetrics)',
      responses: { 200: 'Prometheus text format' },
      async handler() {
        return {
          status: 200,
          rawBody: await metrics.registry.metrics(),
          contentType: metrics.registry.contentType,
        };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/healthz',
      access: 'public',
      summary: 'Liveness: the process serves requests',
      responses: { 200: 'Alive' },
      handler: () => json(200, { status: 'ok' }),
    }),
    defineRoute({
      method: 'GET',
      path: '/readyz',
      access: 'public',
      summary: 'Readiness: the store answers and the gateway is not shutting down',
      responses: { 200: 'Ready', 503: 'Not ready' },
      async handler() {
        const readiness = await deps.isReady();
        return json(readiness.ready ? 200 : 503, {
          status: readiness.ready ? 'ready' : 'not-ready',
          ...readiness,
        });
      },
    }),
  ];
}
