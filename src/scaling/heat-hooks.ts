/**
 * The Heat pre-delete hook flow: drain before delete. With the hook on the server inside each member of
 * the autoscaling group (deploy/heat/), a Heat scale-down pauses the member it removes; this runner
 * finds paused members, drains exactly the node each one is (WebSocket sessions get `migrate`, then a
 * new `assigned`), and clears the hook once the node is empty — or at its drain deadline, after
 * migrating what is left — so Heat deletes an empty VM.
 *
 * It keeps no state that matters across restarts: every poll asks Heat which hooks are pending (a pause
 * with no later clearing), and the node's drain lives in the store, so a VCA that restarts while a
 * hook is pending finds it again and carries on. What Heat is asked, and how, is behind
 * `PreDeleteHooks` (src/openstack/heat-pre-delete-hooks.ts implements it on Heat's REST API).
 *
 * With several gateway instances on one store only one polls at a time: the instance holding the
 * leadership key (a webhook-memory entry in the store, claimed and renewed with the store's atomic
 * claim, lapsing `leaseMs` after its holder stops renewing) acts; the others skip their polls. Should
 * two ever act at once (a lease lapsing mid-poll), nothing breaks: a drain of a draining node is not
 * repeated, and a second clearing of a hook is answered "not set" by Heat.
 */
import type { Clock } from '../clock.js';
import type { OrchestratorMembership } from '../fleet/orchestrator-membership.js';
import type { SessionService } from '../sessions/session-service.js';
import type { NodeView, StateStore } from '../state/state-store.js';
import type { FleetService } from './fleet-service.js';

/** A member of the group whose deletion Heat holds until its pre-delete hook is cleared. */
export interface PausedMember {
  /** The id of the pause event (one pause, one clearing). */
  pauseId: string;
  /** When Heat paused it (ms since the epoch; NaN when Heat's time could not be read). */
  pausedAt: number;
  /** The member's own (nested) stack, where the hooked resource lives. */
  stack: { name: string; id: string };
  /** The member's resource name in the group's nested stack, when its stack name shows it. */
  member: string | null;
  /** The hooked resource (the server inside the member) and its physical id (the Nova server id). */
  resourceName: string;
  serverId: string;
}

/** What clearing a hook came to: done, already not set (cleared before), or the member is gone. */
export type ReleaseOutcome = 'cleared' | 'not-set' | 'gone';

/** The orchestrator side: which members are paused, and clearing one's hook. */
export interface PreDeleteHooks {
  pausedMembers(): Promise<PausedMember[]>;
  release(member: PausedMember): Promise<ReleaseOutcome>;
}

/** What the runner did, one record per step worth a log line. */
export type HeatHookEvent =
  | { type: 'paused-member'; member: PausedMember; nodeId: string | null }
  | { type: 'draining'; member: PausedMember; nodeId: string; sessions: number; deadline: number | null }
  | { type: 'migrated-at-deadline'; member: PausedMember; nodeId: string; sessions: number }
  | {
      type: 'released';
      member: PausedMember;
      nodeId: string | null;
      outcome: ReleaseOutcome;
      why: 'empty' | 'deadline' | 'no-node';
    }
  | { type: 'error'; step: 'poll' | 'drain' | 'release' | 'lease'; member?: PausedMember; error: unknown };

export interface HeatHookRunnerOptions {
  hooks: PreDeleteHooks;
  store: StateStore;
  fleet: FleetService;
  sessions: SessionService;
  clock: Clock;
  /** How long a paused node may keep sessions before the rest migrate and the hook is cleared anyway. */
  drainDeadlineMs: number;
  /** Leadership among gateway instances: the key (per stack) and this instance's name. */
  leaderKey: string;
  instanceId: string;
  /** How long a leadership claim lasts without renewal (a few poll intervals). */
  leaseMs: number;
  onEvent?: (event: HeatHookEvent) => void;
}

export interface PollReport {
  /** False when another instance holds the leadership (nothing was asked or done). */
  leader: boolean;
  paused: number;
  released: number;
  /** Steps that failed; each is retried on the next poll. */
  errors: number;
}

/** Pauses already cleared by this instance, kept so a lagging event list does not clear one twice. */
const rememberedReleases = 4096;

/** Terminal node states: nothing left on the node to wait for. */
const emptyStates = new Set(['drained', 'removed']);

/** The node a paused member is: by its Nova server id first, then by its member resource name. */
export function nodeOfMember(nodes: readonly NodeView[], member: PausedMember): NodeView | undefined {
  const heatNodes = nodes.filter(
    (node): node is NodeView & { orchestrator: OrchestratorMembership } => node.orchestrator?.kind === 'heat',
  );
  if (member.serverId) {
    const byServer = heatNodes.find((node) => node.orchestrator.serverId === member.serverId);
    if (byServer) return byServer;
  }
  if (member.member) {
    const byName = heatNodes.filter((node) => node.orchestrator.member === member.member);
    // A member name is unique in its group; two nodes claiming it (two groups) is not a match.
    if (byName.length === 1) return byName[0];
  }
  return heatNodes.find((node) => node.orchestrator.stackId === member.stack.id);
}

export class HeatHookRunner {
  readonly options: HeatHookRunnerOptions;
  private readonly released = new Set<string>();
  /** When this instance first saw each pending pause (the hook's deadline when no drain deadline is known). */
  private readonly firstSeen = new Map<string, number>();

  constructor(options: HeatHookRunnerOptions) {
    this.options = options;
  }

  /** One pass: find paused members, drain their nodes, clear the hooks of the empty ones. */
  async pollOnce(): Promise<PollReport> {
    const report: PollReport = { leader: false, paused: 0, released: 0, errors: 0 };
    try {
      report.leader = await this.holdLeadership();
    } catch (error) {
      this.emit({ type: 'error', step: 'lease', error });
      report.errors += 1;
      return report;
    }
    if (!report.leader) return report;
    let paused: PausedMember[];
    try {
      paused = (await this.options.hooks.pausedMembers()).filter(
        (member) => !this.released.has(member.pauseId),
      );
    } catch (error) {
      this.emit({ type: 'error', step: 'poll', error });
      report.errors += 1;
      return report;
    }
    // A pause that is no longer pending (cleared by someone else, member gone) is forgotten.
    const pending = new Set(paused.map((member) => member.pauseId));
    for (const pauseId of this.firstSeen.keys()) if (!pending.has(pauseId)) this.firstSeen.delete(pauseId);
    report.paused = paused.length;
    if (paused.length === 0) return report;
    let nodes: NodeView[];
    try {
      nodes = await this.options.store.listNodes();
    } catch (error) {
      this.emit({ type: 'error', step: 'poll', error });
      report.errors += 1;
      return report;
    }
    for (const member of paused) {
      const outcome = await this.handle(member, nodeOfMember(nodes, member));
      if (outcome === 'released') report.released += 1;
      else if (outcome === 'error') report.errors += 1;
    }
    return report;
  }

  /** Gives the leadership up (on shutdown), so another instance takes over without waiting for the lease. */
  async resign(): Promise<void> {
    const { store, leaderKey, clock } = this.options;
    // The store has no conditional delete: claim (for a moment) to read who holds it, then drop the
    // key if it is ours — or was free, and so is only the claim just made.
    const memory = await store.rememberWebhook(leaderKey, this.claim(), 1, clock.now());
    if (memory.first || this.isOurs(memory.result)) await store.forgetWebhook(leaderKey);
  }

  private claim() {
    return { holder: this.options.instanceId };
  }

  private isOurs(result: unknown): boolean {
    return (result as { holder?: unknown } | null)?.holder === this.options.instanceId;
  }

  private async holdLeadership(): Promise<boolean> {
    const { store, leaderKey, leaseMs, clock } = this.options;
    const now = clock.now();
    const memory = await store.rememberWebhook(leaderKey, this.claim(), leaseMs, now);
    if (memory.first) return true;
    if (!this.isOurs(memory.result)) return false;
    await store.settleWebhook(leaderKey, this.claim(), leaseMs, now);
    return true;
  }

  private async handle(
    member: PausedMember,
    found: NodeView | undefined,
  ): Promise<'released' | 'waiting' | 'error'> {
    const { fleet, clock, store, sessions } = this.options;
    let firstSeenAt = this.firstSeen.get(member.pauseId);
    if (firstSeenAt === undefined) {
      firstSeenAt = clock.now();
      this.firstSeen.set(member.pauseId, firstSeenAt);
      this.emit({ type: 'paused-member', member, nodeId: found?.id ?? null });
    }
    // No node (never registered, or drained and removed already): nothing on it to wait for.
    if (!found || emptyStates.has(found.state)) return this.release(member, found?.id ?? null, 'no-node');
    let node: NodeView | undefined = found;
    try {
      if (node.state !== 'draining') {
        [node] = await fleet.drainNodes([node.id], this.options.drainDeadlineMs);
        if (node) {
          this.emit({
            type: 'draining',
            member,
            nodeId: node.id,
            sessions: node.sessions,
            deadline: node.drainDeadline,
          });
        }
      }
      if (!node || emptyStates.has(node.state) || node.sessions === 0) {
        return this.release(member, found.id, 'empty');
      }
      // A drain started elsewhere without a deadline still ends: the hook's own deadline, from the pause.
      const pausedAt = Number.isFinite(member.pausedAt)
        ? Math.min(member.pausedAt, firstSeenAt)
        : firstSeenAt;
      const deadline = node.drainDeadline ?? pausedAt + this.options.drainDeadlineMs;
      if (clock.now() < deadline) return 'waiting';
      // Deadline: what is left migrates (or goes to the front of the queue), then Heat may delete the VM.
      const left = await store.sessionsOnNode(node.id);
      for (const session of left) await sessions.migrate(session.id);
      this.emit({ type: 'migrated-at-deadline', member, nodeId: node.id, sessions: left.length });
    } catch (error) {
      this.emit({ type: 'error', step: 'drain', member, error });
      return 'error';
    }
    return this.release(member, node.id, 'deadline');
  }

  private async release(
    member: PausedMember,
    nodeId: string | null,
    why: 'empty' | 'deadline' | 'no-node',
  ): Promise<'released' | 'error'> {
    let outcome: ReleaseOutcome;
    try {
      outcome = await this.options.hooks.release(member);
    } catch (error) {
      this.emit({ type: 'error', step: 'release', member, error });
      return 'error';
    }
    this.released.add(member.pauseId);
    this.firstSeen.delete(member.pauseId);
    if (this.released.size > rememberedReleases) {
      const oldest = this.released.values().next().value;
      if (oldest !== undefined) this.released.delete(oldest);
    }
    this.emit({ type: 'released', member, nodeId, outcome, why });
    return 'released';
  }

  private emit(event: HeatHookEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // A listener's failure must not stop the flow.
    }
  }
}
