/**
 * Specifications of Heat's removal order and new-size arithmetic (src/scaling/heat-removal-order.ts),
 * first as cases read off Heat's code, then against Heat's own code: where Debian's python3-heat is
 * installed, random groups and adjustments go through `heat.scaling.scalingutil.calculate_new_capacity`,
 * `heat.common.grouputils.GroupInspector` (fed a stand-in RPC client) and
 * `heat.scaling.template.member_definitions`, and both sides must answer the same.
 */
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OrchestratorMembership } from '../../src/fleet/orchestrator-membership.js';
import {
  createdAtSecond,
  type HeatAdjustmentType,
  heatAdjustmentType,
  heatGroupSize,
  heatNewCapacity,
  heatRemovalOrder,
  heatVictims,
} from '../../src/scaling/heat-removal-order.js';

function member(name: string, createdAt: string, failed = false): OrchestratorMembership {
  return {
    kind: 'heat',
    stackId: 'group-stack',
    group: 'vca-asg',
    member: name,
    createdAt,
    ...(failed ? { failed } : {}),
  };
}

const names = (members: readonly OrchestratorMembership[]) => members.map((entry) => entry.member);
const self = (entry: OrchestratorMembership) => entry;

describe('heat: new capacity (scalingutil.calculate_new_capacity)', () => {
  it('adds a change in capacity and replaces with an exact capacity', () => {
    expect(heatNewCapacity(4, -1, 'change_in_capacity')).toBe(3);
    expect(heatNewCapacity(4, 2, 'change_in_capacity')).toBe(6);
    expect(heatNewCapacity(4, 3, 'exact_capacity')).toBe(3);
    expect(heatNewCapacity(4, 2, 'exact_capacity')).toBe(2);
  });

  it('takes a percentage of the current size: -50 % of 4 is 2', () => {
    expect(heatNewCapacity(4, -50, 'percent_change_in_capacity')).toBe(2);
  });

  it('rounds a percentage below one member away from zero, and from one member up towards zero', () => {
    // 10 % of 4 is 0.4: at least one member moves.
    expect(heatNewCapacity(4, -10, 'percent_change_in_capacity')).toBe(3);
    expect(heatNewCapacity(4, 10, 'percent_change_in_capacity')).toBe(5);
    // 33 % of 10 is 3.3: three members, not four.
    expect(heatNewCapacity(10, -33, 'percent_change_in_capacity')).toBe(7);
    expect(heatNewCapacity(10, 33, 'percent_change_in_capacity')).toBe(13);
  });

  it('raises a percentage to min_adjustment_step, and only a percentage', () => {
    expect(heatNewCapacity(10, -10, 'percent_change_in_capacity', { minAdjustmentStep: 3 })).toBe(7);
    expect(heatNewCapacity(10, -50, 'percent_change_in_capacity', { minAdjustmentStep: 3 })).toBe(5);
    expect(heatNewCapacity(10, -1, 'change_in_capacity', { minAdjustmentStep: 3 })).toBe(9);
    // Heat's sign test sends a percentage that rounds to 0 down by the step.
    expect(heatNewCapacity(4, 0, 'percent_change_in_capacity', { minAdjustmentStep: 2 })).toBe(2);
  });

  it('clamps to the group bounds', () => {
    expect(heatNewCapacity(2, -3, 'change_in_capacity', { minimum: 1 })).toBe(1);
    expect(heatNewCapacity(4, 10, 'exact_capacity', { maximum: 6 })).toBe(6);
    expect(heatNewCapacity(1, -5, 'change_in_capacity')).toBe(0);
  });

  it('reads both spellings of each adjustment type, and nothing else', () => {
    const pairs: Array<[string, HeatAdjustmentType]> = [
      ['change_in_capacity', 'change_in_capacity'],
      ['ChangeInCapacity', 'change_in_capacity'],
      ['exact_capacity', 'exact_capacity'],
      ['ExactCapacity', 'exact_capacity'],
      ['percent_change_in_capacity', 'percent_change_in_capacity'],
      ['PercentChangeInCapacity', 'percent_change_in_capacity'],
    ];
    for (const [spelling, type] of pairs) expect(heatAdjustmentType(spelling)).toBe(type);
    expect(heatAdjustmentType('CHANGE_IN_CAPACITY')).toBeUndefined();
    expect(heatAdjustmentType('percent')).toBeUndefined();
  });
});

describe('heat: removal order (grouputils sort key, template.member_definitions)', () => {
  it('removes failed members first, then the oldest', () => {
    const group = [
      member('m-new', '2026-11-19T12:00:00Z'),
      member('m-old', '2026-11-19T10:00:00Z'),
      member('m-failed', '2026-11-19T13:00:00Z', true),
      member('m-mid', '2026-11-19T11:00:00Z'),
    ];
    expect(names(heatRemovalOrder(group, self))).toEqual(['m-failed', 'm-old', 'm-mid', 'm-new']);
    expect(names(heatVictims(group, self, 3))).toEqual(['m-failed']);
    expect(names(heatVictims(group, self, 2))).toEqual(['m-failed', 'm-old']);
  });

  it('compares creation times to the second, so members created in one second go by name', () => {
    const group = [
      member('zzz', '2026-11-19T10:00:00.100Z'),
      member('aaa', '2026-11-19T10:00:00.900Z'),
      member('mmm', '2026-11-19T09:59:59.999Z'),
    ];
    expect(names(heatRemovalOrder(group, self))).toEqual(['mmm', 'aaa', 'zzz']);
  });

  it('reads times with an offset, and times without one as UTC', () => {
    expect(createdAtSecond('2026-11-19T10:35:59Z')).toBe(Date.UTC(2026, 10, 19, 10, 35, 59) / 1000);
    expect(createdAtSecond('2026-11-19T10:35:59')).toBe(Date.UTC(2026, 10, 19, 10, 35, 59) / 1000);
    expect(createdAtSecond('2026-11-19T12:35:59+02:00')).toBe(Date.UTC(2026, 10, 19, 10, 35, 59) / 1000);
    expect(createdAtSecond('2026-11-19 10:35:59.75Z')).toBe(Date.UTC(2026, 10, 19, 10, 35, 59) / 1000);
    expect(createdAtSecond('2026-02-29T00:00:00Z')).toBeUndefined();
    expect(createdAtSecond('2026-11-19T24:00:00Z')).toBeUndefined();
    expect(createdAtSecond('last tuesday')).toBeUndefined();
  });

  it('counts the size as Heat reports it: members that are not FAILED', () => {
    expect(
      heatGroupSize([member('a', '2026-01-01T00:00:00Z'), member('b', '2026-01-01T00:00:00Z', true)]),
    ).toBe(1);
  });

  it('removes nothing when the group does not shrink', () => {
    const group = [member('a', '2026-01-01T00:00:00Z'), member('b', '2026-01-01T00:00:01Z')];
    expect(heatVictims(group, self, 2)).toEqual([]);
    expect(heatVictims(group, self, 5)).toEqual([]);
    expect(names(heatVictims(group, self, 0))).toEqual(['a', 'b']);
  });
});

// ---------------------------------------------------------------------------------------------------
// Against Heat's own code.

const HEAT_PYTHON = '/usr/bin/python3';
const heatInstalled =
  spawnSync(HEAT_PYTHON, ['-c', 'import heat.scaling.scalingutil, heat.common.grouputils'], {
    encoding: 'utf8',
  }).status === 0;

/** Reads cases as JSON on stdin, answers Heat's new capacity and removed members for each. */
const HEAT_ORACLE = `
import json, sys
from heat.scaling import scalingutil, template
from heat.common import grouputils

class Rpc:
    def __init__(self, resources):
        self.resources = resources
    def list_stack_resources(self, context, identity):
        return self.resources

answers = []
for case in json.load(sys.stdin):
    resources = [{'resource_status': 'FAILED' if m['failed'] else 'COMPLETE',
                  'creation_time': m['creationTime'], 'resource_name': m['name']} for m in case['members']]
    inspector = grouputils.GroupInspector(None, Rpc(resources), {'stack_id': 'g'})
    current = inspector.size(include_failed=False)
    new = scalingutil.calculate_new_capacity(current, case['adjustment'], case['type'],
                                             case['minStep'], case['minimum'], case['maximum'])
    old = [(name, name) for name in inspector.member_names(include_failed=True)]
    kept = [name for name, _ in template.member_definitions(old, 'new-definition', new, 0, lambda: 'new')]
    answers.append({'current': current, 'new': new,
                    'removed': [name for name, _ in old if name not in kept]})
print(json.dumps(answers))
`;

interface OracleCase {
  members: Array<{ name: string; creationTime: string; failed: boolean }>;
  adjustment: number;
  type: string;
  minStep: number | null;
  minimum: number;
  maximum: number;
}

function askHeat(cases: OracleCase[]): Array<{ current: number; new: number; removed: string[] }> {
  const run = spawnSync(HEAT_PYTHON, ['-c', HEAT_ORACLE], { input: JSON.stringify(cases), encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`Heat's code failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

const spellings = [
  'change_in_capacity',
  'ChangeInCapacity',
  'exact_capacity',
  'ExactCapacity',
  'percent_change_in_capacity',
  'PercentChangeInCapacity',
];

const oracleCase: fc.Arbitrary<OracleCase> = fc
  .record({
    members: fc.uniqueArray(
      fc.record({
        name: fc.stringMatching(/^[a-z0-9]{1,6}$/),
        // A few seconds apart at most, so ties within a second (and by name) are common.
        second: fc.integer({ min: 0, max: 4 }),
        failed: fc.boolean(),
      }),
      { minLength: 0, maxLength: 9, selector: (entry) => entry.name },
    ),
    type: fc.constantFrom(...spellings),
    adjustment: fc.integer({ min: -120, max: 40 }),
    minStep: fc.option(fc.integer({ min: 0, max: 4 }), { nil: null }),
    minimum: fc.integer({ min: 0, max: 3 }),
    extra: fc.integer({ min: 0, max: 12 }),
  })
  .map(({ members, type, adjustment, minStep, minimum, extra }) => ({
    members: members.map((entry) => ({
      name: entry.name,
      creationTime: `2026-11-19T10:00:0${entry.second}Z`,
      failed: entry.failed,
    })),
    type,
    // Whole members for a change or an exact size, any percentage for a percent change.
    adjustment: type.toLowerCase().includes('exact') ? Math.abs(adjustment) % 12 : adjustment,
    minStep,
    minimum,
    maximum: minimum + extra,
  }));

describe.skipIf(!heatInstalled)("heat: the same answers as Heat's own code (python3-heat)", () => {
  it('computes the new size and removes the same members as Heat for 400 random groups', () => {
    const cases = fc.sample(oracleCase, { numRuns: 400, seed: 20261129 });
    const heat = askHeat(cases);
    cases.forEach((testCase, index) => {
      const memberships = testCase.members.map((entry) =>
        member(entry.name, entry.creationTime, entry.failed),
      );
      const type = heatAdjustmentType(testCase.type)!;
      const current = heatGroupSize(memberships);
      const limits = {
        minimum: testCase.minimum,
        maximum: testCase.maximum,
        ...(testCase.minStep === null ? {} : { minAdjustmentStep: testCase.minStep }),
      };
      const newCapacity = heatNewCapacity(current, testCase.adjustment, type, limits);
      const context = JSON.stringify({ testCase, heat: heat[index] });
      expect(current, context).toBe(heat[index]!.current);
      expect(newCapacity, context).toBe(heat[index]!.new);
      expect(names(heatVictims(memberships, self, newCapacity)).sort(), context).toEqual(
        [...heat[index]!.removed].sort(),
      );
    });
  });
});
