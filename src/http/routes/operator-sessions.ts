/**
 * The operator's list of live sessions (`GET /v1/operator/sessions`), read through the store's
 * per-node and queue look-ups (the store keeps no list of every session): assigned sessions node by
 * node, then queued ones in queue order, filtered by title, node, region and state.
 */
import { VcaError } from '../../errors.js';
import type { SessionRecord } from '../../sessions/session.js';
import type { NodeView, StateStore } from '../../state/state-store.js';

export interface SessionFilter {
  game?: string;
  node?: string;
  region?: string;
  state?: 'queued' | 'assigned';
  limit: number;
}

export interface OperatorSessionRow {
  id: string;
  state: 'queued' | 'assigned';
  game: string;
  width: number;
  height: number;
  fps: number;
  priority: string;
  transport: SessionRecord['transport'];
  owner: string | null;
  node: string | null;
  gpu: number | null;
  model: string | null;
  /** The region of the node it runs on; for a queued session, the region it asked for (if any). */
  region: string | null;
  createdAt: number;
  assignedAt: number | null;
  /** 1-based position of a queued session. */
  position: number | null;
  migrations: number;
}

const defaultLimit = 500;
const maxLimit = 5000;
const filterNames = new Set(['game', 'node', 'region', 'state', 'limit']);
/** Nodes whose sessions are read at once. */
const nodeBatch = 32;

/** Checks the query of the list: unknown parameters and bad values are a 400 naming the parameter. */
export function parseSessionFilter(query: URLSearchParams): SessionFilter {
  const filter: SessionFilter = { limit: defaultLimit };
  for (const [name, value] of query) {
    if (!filterNames.has(name))
      throw new VcaError('VCA_ERR_VALIDATION', `Unknown query parameter "${name}"`, { field: name });
    if (query.getAll(name).length > 1)
      throw new VcaError('VCA_ERR_VALIDATION', `Query parameter "${name}" is given twice`, { field: name });
    if (name === 'limit') {
      if (!/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > maxLimit)
        throw new VcaError('VCA_ERR_VALIDATION', `limit must be an integer from 1 to ${maxLimit}`, {
          field: 'limit',
        });
      filter.limit = Number(value);
    } else if (name === 'state') {
      if (value !== 'queued' && value !== 'assigned')
        throw new VcaError('VCA_ERR_VALIDATION', 'state must be "queued" or "assigned"', { field: 'state' });
      filter.state = value;
    } else {
      if (value.length === 0 || value.length > 256)
        throw new VcaError('VCA_ERR_VALIDATION', `${name} must be 1 to 256 characters`, { field: name });
      filter[name as 'game' | 'node' | 'region'] = value;
    }
  }
  return filter;
}

function row(
  session: SessionRecord,
  node: NodeView | undefined,
  position: number | null,
): OperatorSessionRow {
  return {
    id: session.id,
    state: session.state === 'queued' ? 'queued' : 'assigned',
    game: session.game,
    width: session.width,
    height: session.height,
    fps: session.fps,
    priority: session.priority,
    transport: session.transport,
    owner: session.owner,
    node: session.placement?.nodeId ?? null,
    gpu: session.placement?.gpuIndex ?? null,
    model: session.placement?.model ?? null,
    region: node ? (node.labels.region ?? null) : (session.region ?? null),
    createdAt: session.createdAt,
    assignedAt: session.assignedAt,
    position,
    migrations: session.migrations,
  };
}

export async function listSessionsForOperator(
  store: StateStore,
  filter: SessionFilter,
): Promise<{ sessions: OperatorSessionRow[]; truncated: boolean }> {
  const rows: OperatorSessionRow[] = [];
  let truncated = false;
  const keep = (candidate: OperatorSessionRow): boolean => {
    if (filter.game !== undefined && candidate.game !== filter.game) return true;
    if (filter.region !== undefined && candidate.region !== filter.region) return true;
    if (rows.length >= filter.limit) {
      truncated = true;
      return false;
    }
    rows.push(candidate);
    return true;
  };

  if (filter.state !== 'queued') {
    let nodes: NodeView[];
    if (filter.node !== undefined) {
      const node = await store.getNode(filter.node);
      nodes = node ? [node] : [];
    } else nodes = (await store.listNodes()).sort((a, b) => a.id.localeCompare(b.id));
    if (filter.region !== undefined) nodes = nodes.filter((node) => node.labels.region === filter.region);
    nodes = nodes.filter((node) => node.sessions > 0);
    outer: for (let start = 0; start < nodes.length; start += nodeBatch) {
      const batch = nodes.slice(start, start + nodeBatch);
      const sessions = await Promise.all(batch.map((node) => store.sessionsOnNode(node.id)));
      for (const [index, onNode] of sessions.entries()) {
        for (const session of onNode) {
          if (session.state !== 'assigned') continue;
          if (!keep(row(session, batch[index], null))) break outer;
        }
      }
    }
  }
  if (filter.state !== 'assigned' && filter.node === undefined && !truncated) {
    const positions = [...(await store.queuePositions())].sort((a, b) => a[1] - b[1]);
    for (const [id, position] of positions) {
      const session = await store.getSession(id);
      if (session === undefined || session.state !== 'queued') continue;
      if (!keep(row(session, undefined, position))) break;
    }
  }
  return { sessions: rows, truncated };
}
