/**
 * Which orchestrator group a node belongs to, and as which member: what the contextualization
 * registration may carry, kept with the node by both stores and shown on its view. The scale-down
 * paths read it to drain exactly the members the orchestrator will remove
 * (src/scaling/heat-removal-order.ts).
 */

/** A member of a Heat `OS::Heat::AutoScalingGroup` (or the AWS-compatible group). */
export interface OrchestratorMembership {
  kind: 'heat';
  /** The id of the stack the membership is reported against (the group's nested stack, or its parent). */
  stackId: string;
  /** The group: its resource name, or the name Heat's autoscaling notifications carry as `groupname`. */
  group: string;
  /** The member's resource name inside the group's nested stack (Heat's tie-break in the removal order). */
  member: string;
  /** The Nova server id of the member, when known. */
  serverId?: string;
  /** When Heat created the member resource, ISO 8601 (Heat compares it at one-second resolution). */
  createdAt: string;
  /** The member's resource is in a FAILED state: Heat removes failed members first. */
  failed?: boolean;
}

/** Whether a node's membership puts it in the group a notification names (resource name or stack id). */
export function isMemberOf(membership: OrchestratorMembership | undefined, group: string): boolean {
  return membership !== undefined && (membership.group === group || membership.stackId === group);
}
