/**
 * Shared steps of the gamer-flow specifications: session shapes with known costs on an L4, nodes that
 * are ready to take sessions, moving the fake clock the way real time would (WebSocket leases renewed
 * while sockets stay open), and the ledger check every test that placed sessions ends with.
 */
import { expect } from 'vitest';
import { verifyTicket } from '../../src/tickets/index.js';
import { idleTelemetry, type TestGateway } from '../support/gateway.js';

/** 0.4 of an L4: two fit under the 0.9 GPU headroom, a third does not. */
export const halfL4 = { game: 'unigine-heaven', resolution: '1080p', fps: 60 } as const;
/** About 0.71 of an L4: one per L4. */
export const wholeL4 = { game: 'unigine-heaven', resolution: '1440p', fps: 60 } as const;

export interface ReadyNode {
  id: string;
  token: string;
  ticketKey: string;
  gpuCount: number;
}

/** Registers a node by webhook and reports idle telemetry for it, so it can take sessions now. */
export async function readyNode(gw: TestGateway, id: string, model = 'L4', gpuCount = 1): Promise<ReadyNode> {
  const credentials = await gw.registerNode(id, model, gpuCount);
  const reported = await gw.telemetry(id, credentials.token, idleTelemetry(gpuCount));
  expect(reported.status).toBe(200);
  return { id, gpuCount, ...credentials };
}

/** Idle telemetry for each node, as their probes would send it every interval. */
export async function reportIdle(gw: TestGateway, ...nodes: ReadyNode[]): Promise<void> {
  for (const node of nodes) {
    const reported = await gw.telemetry(node.id, node.token, idleTelemetry(node.gpuCount));
    expect(reported.status).toBe(200);
  }
}

/**
 * Moves the fake clock. With `renewWebsocket`, the leases of attached sockets are renewed in the same
 * synchronous step, as the gateway's real-time renewal would have done meanwhile (no periodic tick can
 * run between the two).
 */
export function advance(gw: TestGateway, seconds: number, options: { renewWebsocket?: boolean } = {}) {
  gw.clock.advance(seconds * 1000);
  if (options.renewWebsocket) {
    return gw.gateway.vca.sessions.renewLeases(gw.gateway.play.attachedSessionIds(), 'websocket');
  }
  return Promise.resolve(0);
}

/** Polls `check` until it stops throwing (queue passes run just after the request that triggered them). */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 2000): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() - started > timeoutMs) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** Lets pending queue passes and socket writes run. */
export function settle(ms = 30): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function claimsOf(ticket: string, node: ReadyNode, gw: TestGateway) {
  return verifyTicket(ticket, {
    nodeKey: Buffer.from(node.ticketKey, 'hex'),
    nodeId: node.id,
    now: gw.clock.now(),
  });
}

export async function getNode(gw: TestGateway, id: string) {
  const response = await gw.request('operator', 'GET', `/v1/nodes/${id}`);
  expect(response.status).toBe(200);
  return response.body;
}

export async function getSession(gw: TestGateway, id: string) {
  const response = await gw.request('gamer', 'GET', `/v1/sessions/${id}`);
  expect(response.status).toBe(200);
  return response.body;
}

/** A problem+json answer with this status and code. */
export function expectProblem(
  response: { status: number; body: any; headers: Headers },
  status: number,
  code: string,
): void {
  expect({ status: response.status, code: response.body?.code }).toEqual({ status, code });
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
}

/**
 * The ledger invariant, seen from the operator API and from the store: every GPU's committed load
 * equals the sum of the costs of the live sessions on it, and counts agree.
 */
export async function expectLedgerBalanced(gw: TestGateway): Promise<void> {
  const audit = await gw.gateway.vca.store.audit();
  for (const gpu of audit.gpus) {
    expect(gpu.committed, `${gpu.nodeId}#${gpu.index}`).toEqual(gpu.sumOfSessions);
  }
  const listed = await gw.request('operator', 'GET', '/v1/nodes');
  expect(listed.status).toBe(200);
  for (const node of listed.body.nodes) {
    const hosted = node.state === 'removed' ? [] : (await getNode(gw, node.id)).sessionIds;
    let sessionsOnNode = 0;
    for (const gpu of node.gpus) {
      const audited = audit.gpus.find((entry) => entry.nodeId === node.id && entry.index === gpu.index);
      expect(audited, `${node.id}#${gpu.index} in the audit`).toBeDefined();
      expect(gpu.committed, `${node.id}#${gpu.index} via GET /v1/nodes`).toEqual(audited!.sumOfSessions);
      expect(gpu.sessions).toBe(audited!.sessions);
      sessionsOnNode += gpu.sessions;
    }
    expect(hosted).toHaveLength(sessionsOnNode);
    for (const id of hosted) expect((await getSession(gw, id)).state).toBe('assigned');
  }
}
