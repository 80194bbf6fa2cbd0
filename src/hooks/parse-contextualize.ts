/** Turns a `POST /v1/hooks/contextualize` body (the VCA's own format) into an `OrchestrationEvent`. */
import { isIPv4, isIPv6 } from 'node:net';
import type { OrchestratorMembership } from '../fleet/orchestrator-membership.js';
import { createdAtSecond } from '../scaling/heat-removal-order.js';
import type { OrchestrationEvent } from './orchestration-event.js';
import { countOf, listForSummary, toSummaryLine } from './orchestration-event.js';
import type { NodeReference, NodeRegistration, OrchestratorMembershipBody } from './schemas.js';
import {
  assertMatches,
  ContextualizeScaleDownByCountSchema,
  ContextualizeScaleDownByNodesSchema,
  ContextualizeScaleUpSchema,
  invalidField,
  isJsonObject,
} from './schemas.js';

const WHAT = 'contextualization body';

export function parseContextualize(body: unknown): OrchestrationEvent {
  if (!isJsonObject(body)) throw invalidField('body', `the ${WHAT} must be a JSON object`);
  switch (body.event) {
    case 'scale-up':
      return parseScaleUp(body);
    case 'scale-down':
      return parseScaleDown(body);
    default:
      throw invalidField('event', 'must be "scale-up" or "scale-down"');
  }
}

function parseScaleUp(body: Record<string, unknown>): OrchestrationEvent {
  assertMatches(ContextualizeScaleUpSchema, body, '', WHAT);
  const seenIds = new Set<string>();
  const nodes = body.nodes.map((node, index) => {
    if (seenIds.has(node.id)) {
      throw invalidField(`nodes.${index}.id`, `node "${node.id}" is listed twice; register each node once`);
    }
    seenIds.add(node.id);
    return copyRegistration(node, `nodes.${index}`);
  });
  const ids = nodes.map((node) => node.id);
  return {
    idempotencyKey: `contextualize:${body.eventId}`,
    source: 'contextualize',
    eventType: 'scale-up',
    group: body.group,
    action: { kind: 'register-nodes', nodes },
    summary: toSummaryLine(
      `contextualize scale-up of group ${body.group}: register ${countOf(ids.length, 'node')} (${listForSummary(ids)})`,
    ),
  };
}

function parseScaleDown(body: Record<string, unknown>): OrchestrationEvent {
  const hasNodes = body.nodes !== undefined;
  const hasCount = body.count !== undefined;
  if (hasNodes && hasCount)
    throw invalidField('count', 'send either nodes or count for a scale-down, not both');
  if (!hasNodes && !hasCount) throw invalidField('nodes', 'a scale-down needs either nodes or count');

  if (hasCount) {
    assertMatches(ContextualizeScaleDownByCountSchema, body, '', WHAT);
    return {
      idempotencyKey: `contextualize:${body.eventId}`,
      source: 'contextualize',
      eventType: 'scale-down',
      group: body.group,
      action: { kind: 'drain-count', count: body.count },
      summary: toSummaryLine(
        `contextualize scale-down of group ${body.group}: drain ${countOf(body.count, 'node')}`,
      ),
    };
  }

  assertMatches(ContextualizeScaleDownByNodesSchema, body, '', WHAT);
  // A repeated id drains the same node; collapsing it keeps the action a set, as the caller meant.
  const firstMention = new Map<string, string>();
  body.nodes.forEach((reference, index) => {
    const id = nodeIdOf(reference);
    if (!firstMention.has(id)) firstMention.set(id, `nodes.${index}`);
  });
  const nodeIds = [...firstMention.keys()];
  return {
    idempotencyKey: `contextualize:${body.eventId}`,
    source: 'contextualize',
    eventType: 'scale-down',
    group: body.group,
    action: { kind: 'drain-nodes', nodeIds, fields: [...firstMention.values()] },
    summary: toSummaryLine(
      `contextualize scale-down of group ${body.group}: drain ${countOf(nodeIds.length, 'node')} (${listForSummary(nodeIds)})`,
    ),
  };
}

function nodeIdOf(reference: NodeReference): string {
  return typeof reference === 'string' ? reference : reference.id;
}

/** A fresh copy, so nothing downstream aliases (or is surprised by) the request body's objects. */
function copyRegistration(node: NodeRegistration, field: string): NodeRegistration {
  checkHost(node.host, `${field}.host`);
  const seenModels = new Set<string>();
  const gpus = node.gpus.map((gpu, index) => {
    if (seenModels.has(gpu.model)) {
      throw invalidField(
        `${field}.gpus.${index}.model`,
        `GPU model "${gpu.model}" is listed twice; add up the count`,
      );
    }
    seenModels.add(gpu.model);
    return { model: gpu.model, count: gpu.count };
  });
  const copy: NodeRegistration = {
    id: node.id,
    host: node.host,
    port: node.port,
    protocol: node.protocol,
    gpus,
  };
  if (node.labels !== undefined) copy.labels = Object.fromEntries(Object.entries(node.labels));
  if (node.orchestrator !== undefined) copy.orchestrator = copyMembership(node.orchestrator, field);
  return copy;
}

function copyMembership(membership: OrchestratorMembershipBody, field: string): OrchestratorMembership {
  // The pattern admits any digits; a 13th month or a 25th hour is no time Heat could have written.
  if (createdAtSecond(membership.createdAt) === undefined) {
    throw invalidField(
      `${field}.orchestrator.createdAt`,
      `"${membership.createdAt}" is not a real date and time; send Heat's creation_time, e.g. 2026-11-19T10:35:59Z`,
    );
  }
  const copy: OrchestratorMembership = {
    kind: membership.kind,
    stackId: membership.stackId,
    group: membership.group,
    member: membership.member,
    createdAt: membership.createdAt,
  };
  if (membership.serverId !== undefined) copy.serverId = membership.serverId;
  if (membership.failed !== undefined) copy.failed = membership.failed;
  return copy;
}

function checkHost(host: string, field: string): void {
  // The schema's pattern admits anything shaped like a host name; numbers-and-dots must be a real IPv4
  // address and anything with a colon a real IPv6 address, or the node would be unreachable.
  if (/^[0-9.]+$/.test(host) && !isIPv4(host))
    throw invalidField(field, `"${host}" is not a valid IPv4 address`);
  if (host.includes(':') && !isIPv6(host)) throw invalidField(field, `"${host}" is not a valid IPv6 address`);
}
