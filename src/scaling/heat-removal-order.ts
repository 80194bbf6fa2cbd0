/**
 * Which members a Heat autoscaling group removes on a scale-down, computed the way Heat computes it, so
 * the VCA drains exactly those nodes and no other. Pure functions; the facts come from Heat's own code
 * (Debian's python3-heat, Heat 19), cited per function:
 *
 * - the new size: `heat/scaling/scalingutil.py` `calculate_new_capacity`, called with the size
 *   `heat/common/grouputils.py` `get_size` reports (members not FAILED) from `adjust` in
 *   `heat/engine/resources/aws/autoscaling/autoscaling_group.py` (which the native
 *   `OS::Heat::AutoScalingGroup` inherits);
 * - the order: `GroupInspector._get_member_data` in `heat/common/grouputils.py` sorts members by
 *   (not FAILED, created_time, name), so failed members come first, then the oldest;
 * - who goes: `heat/scaling/template.py` `member_definitions` keeps the last `num_resources` of that
 *   order (`_create_template` in `instance_group.py` passes the members FAILED ones included), so the
 *   first `members - new size` are removed.
 */
import type { OrchestratorMembership } from '../fleet/orchestrator-membership.js';

/** Heat's three adjustment types, by their native (snake_case) names. */
export type HeatAdjustmentType = 'change_in_capacity' | 'exact_capacity' | 'percent_change_in_capacity';

// `scalingutil.py` defines both spellings of each type: ADJUSTMENT_TYPES (OS::Heat::ScalingPolicy) and
// CFN_ADJUSTMENT_TYPES (AWS::AutoScaling::ScalingPolicy); `calculate_new_capacity` accepts either.
const ADJUSTMENT_TYPE_SPELLINGS: ReadonlyMap<string, HeatAdjustmentType> = new Map([
  ['change_in_capacity', 'change_in_capacity'],
  ['ChangeInCapacity', 'change_in_capacity'],
  ['exact_capacity', 'exact_capacity'],
  ['ExactCapacity', 'exact_capacity'],
  ['percent_change_in_capacity', 'percent_change_in_capacity'],
  ['PercentChangeInCapacity', 'percent_change_in_capacity'],
]);

/** The adjustment type for either of Heat's spellings; undefined for anything else. */
export function heatAdjustmentType(spelling: string): HeatAdjustmentType | undefined {
  return ADJUSTMENT_TYPE_SPELLINGS.get(spelling);
}

export interface CapacityLimits {
  /** The policy's `min_adjustment_step` (percent changes only); absent or 0: none. */
  minAdjustmentStep?: number;
  /** The group's `min_size`; 0 when unknown. */
  minimum?: number;
  /** The group's `max_size`; unbounded when unknown. */
  maximum?: number;
}

/**
 * The group size after an adjustment, as `calculate_new_capacity` computes it: a change adds, an exact
 * capacity replaces, a percentage of the current size is rounded away from zero below one whole member
 * and towards zero from one up, then raised to `min_adjustment_step`; the result is clamped to the
 * group's bounds. Kept as Heat has it: with a minimum step, a percentage that rounds to 0 moves the
 * size down by the step (Heat's sign test treats 0 as negative).
 */
export function heatNewCapacity(
  current: number,
  adjustment: number,
  type: HeatAdjustmentType,
  limits: CapacityLimits = {},
): number {
  let capacity: number;
  if (type === 'change_in_capacity') capacity = current + adjustment;
  else if (type === 'exact_capacity') capacity = adjustment;
  else {
    const delta = (current * adjustment) / 100;
    let rounded: number;
    if (Math.abs(delta) < 1) rounded = delta > 0 ? Math.ceil(delta) : Math.floor(delta);
    else rounded = delta > 0 ? Math.floor(delta) : Math.ceil(delta);
    const step = limits.minAdjustmentStep ?? 0;
    if (step > 0 && step > Math.abs(rounded)) rounded = rounded > 0 ? step : -step;
    capacity = current + rounded;
  }
  const maximum = limits.maximum ?? Number.POSITIVE_INFINITY;
  const minimum = limits.minimum ?? 0;
  if (capacity > maximum) return maximum;
  if (capacity < minimum) return minimum;
  return capacity;
}

const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(Z|([+-])(\d{2}):?(\d{2}))?$/;

/**
 * A creation time in whole seconds since the epoch: Heat stores `created_at` without fractions, so two
 * members created in the same second tie and fall to the name. Without an offset the time is UTC (as
 * Heat's API writes it). Undefined for text that is no real date and time.
 */
export function createdAtSecond(text: string): number | undefined {
  const match = ISO_DATE_TIME.exec(text);
  if (match === null) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return undefined;
  const utc = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 31 February over into March; a real date comes back with its own day.
  if (new Date(utc).getUTCDate() !== day) return undefined;
  let offsetMinutes = 0;
  if (match[8] !== undefined) {
    const hours = Number(match[9]);
    const minutes = Number(match[10]);
    if (hours > 23 || minutes > 59) return undefined;
    offsetMinutes = (match[8] === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  return Math.floor(utc / 1000) - offsetMinutes * 60;
}

/** Python's string order (code points), which Heat's sort uses for names; JS `<` compares UTF-16 units. */
function compareCodePoints(a: string, b: string): number {
  const left = [...a];
  const right = [...b];
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const difference = left[i]!.codePointAt(0)! - right[i]!.codePointAt(0)!;
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}

/** Heat's member order: failed first, then by creation second, then by resource name. */
export function compareHeatMembers(a: OrchestratorMembership, b: OrchestratorMembership): number {
  const failedFirst = (a.failed === true ? 0 : 1) - (b.failed === true ? 0 : 1);
  if (failedFirst !== 0) return failedFirst;
  const created = (createdAtSecond(a.createdAt) ?? 0) - (createdAtSecond(b.createdAt) ?? 0);
  if (created !== 0) return created;
  return compareCodePoints(a.member, b.member);
}

/** Items in Heat's removal order (the first is removed first), by the membership each one has. */
export function heatRemovalOrder<T>(
  items: readonly T[],
  membershipOf: (item: T) => OrchestratorMembership,
): T[] {
  return [...items].sort((a, b) => compareHeatMembers(membershipOf(a), membershipOf(b)));
}

/** The size Heat reports for a group (`grouputils.get_size`): members that are not FAILED. */
export function heatGroupSize(memberships: readonly OrchestratorMembership[]): number {
  return memberships.filter((membership) => membership.failed !== true).length;
}

/**
 * The members a resize to `newCapacity` removes: all members, FAILED ones included, in Heat's order,
 * less the last `newCapacity` (`member_definitions`). None when the group does not shrink.
 */
export function heatVictims<T>(
  items: readonly T[],
  membershipOf: (item: T) => OrchestratorMembership,
  newCapacity: number,
): T[] {
  const removed = items.length - Math.max(0, newCapacity);
  if (removed <= 0) return [];
  return heatRemovalOrder(items, membershipOf).slice(0, removed);
}
