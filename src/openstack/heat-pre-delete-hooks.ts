/**
 * The pre-delete hooks of a Heat autoscaling group, read from Heat's event list: which members are
 * paused, and clearing one (src/scaling/heat-hooks.ts drives it).
 *
 * Facts this relies on, measured on a real Heat 19 and matching its code (heat/engine/resource.py):
 * - with the hook on the `server` inside each member (members are a provider template), removing a
 *   member deletes its nested stack, which stops at the server: `_break_if_required` records an event
 *   on that resource with reason `DELETE paused until Hook pre-delete is cleared` and the resource's
 *   current state as status — `CREATE_COMPLETE`, not a DELETE status;
 * - clearing it (`_unset_hook`) records `Hook pre-delete is cleared` on the same resource, and a wait
 *   that fails records `Failure occurred while waiting.`; once the delete goes ahead the resource
 *   records `DELETE_IN_PROGRESS`;
 * - `openstack stack hook poll` at the root stack does not see the pause (the root does not go
 *   IN_PROGRESS on a scaling signal), so the root's events are listed with `nested_depth` (root 0, the
 *   group's nested stack 1, each member's stack 2) and a pause counts while no later event of the same
 *   resource ends it;
 * - the event names no stack: its `stack` link gives the member's stack, named
 *   `<group stack name>-<member resource name>-<12-character short id>` (`physical_resource_name` in
 *   heat/engine/resource.py), so the member's resource name is the second last part.
 */
import type { PausedMember, PreDeleteHooks, ReleaseOutcome } from '../scaling/heat-hooks.js';
import type { HeatClient, HeatEvent, StackRef } from './heat.js';

export const preDeletePauseReason = 'DELETE paused until Hook pre-delete is cleared';
export const preDeleteClearedReason = 'Hook pre-delete is cleared';
const waitFailedReason = 'Failure occurred while waiting.';

export interface HeatPreDeleteHooksOptions {
  client: HeatClient;
  /** The stack that holds the group (as created from deploy/heat/vca-stack.yaml). */
  stack: StackRef;
  /** The hooked resource inside each member (the environment's `<group>: "*": <resource>: hooks`). */
  resourceName?: string;
  /** Nesting from the root to the member stacks: 2 when the group is a resource of the root stack. */
  nestedDepth?: number;
}

/** The member's resource name from its stack name `<group stack>-<member>-<short id>`, or null. */
export function memberNameOfStack(stackName: string): string | null {
  const parts = stackName.split('-');
  if (parts.length < 3) return null;
  const member = parts[parts.length - 2];
  return member ? member : null;
}

function parseHeatTime(value: string): number {
  if (value === '') return Number.NaN;
  // Heat writes UTC, without a zone designator in some versions.
  return Date.parse(/[zZ]|[+-]\d{2}:?\d{2}$/.test(value) ? value : `${value}Z`);
}

/**
 * The pauses still pending in an event list read oldest first: per (stack, resource), a pause stays
 * pending until a later event of that resource clears it, fails the wait, or starts the delete.
 */
export function pendingPreDeletePauses(events: readonly HeatEvent[], resourceName: string): PausedMember[] {
  const pending = new Map<string, PausedMember>();
  for (const event of events) {
    if (event.resourceName !== resourceName || !event.stack) continue;
    const key = `${event.stack.id}/${event.resourceName}`;
    if (event.reason === preDeletePauseReason) {
      pending.set(key, {
        pauseId: event.id,
        pausedAt: parseHeatTime(event.time),
        stack: event.stack,
        member: memberNameOfStack(event.stack.name),
        resourceName: event.resourceName,
        serverId: event.physicalResourceId,
      });
    } else if (
      event.reason === preDeleteClearedReason ||
      event.reason === waitFailedReason ||
      event.resourceStatus.startsWith('DELETE_')
    ) {
      pending.delete(key);
    }
  }
  return [...pending.values()];
}

export class HeatPreDeleteHooks implements PreDeleteHooks {
  private readonly options: HeatPreDeleteHooksOptions;
  private readonly resourceName: string;

  constructor(options: HeatPreDeleteHooksOptions) {
    this.options = options;
    this.resourceName = options.resourceName ?? 'server';
  }

  async pausedMembers(): Promise<PausedMember[]> {
    const events = await this.options.client.listEvents(this.options.stack, {
      nestedDepth: this.options.nestedDepth ?? 2,
      resourceName: this.resourceName,
    });
    return pendingPreDeletePauses(events, this.resourceName);
  }

  release(member: PausedMember): Promise<ReleaseOutcome> {
    return this.options.client.unsetHook(member.stack, member.resourceName, 'pre-delete');
  }
}
