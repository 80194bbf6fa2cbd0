import { describe, expect, it } from 'vitest';
import {
  type LatencyRules,
  latencyPlan,
  latencySchedule,
  orderedLatencies,
} from '../../src/placement/latency-policy.js';

const rules: LatencyRules = {
  latencyPolicies: [
    { maxLatencyMs: 50, forSeconds: 5 },
    { maxLatencyMs: 100, forSeconds: 20 },
  ],
  allowUnreportedRegions: false,
};
const latencies = { us: 60, eu: 20, ap: 150 };
const createdAt = 10_000;

describe('placement: latency policies', () => {
  it('puts the policies end to end: policy i holds while age < the sum of forSeconds of 0..i', () => {
    expect(latencySchedule(rules.latencyPolicies)).toEqual([
      { untilAgeMs: 5_000, maxLatencyMs: 50 },
      { untilAgeMs: 25_000, maxLatencyMs: 100 },
    ]);
  });

  it('orders reported regions by latency, ties by region name', () => {
    expect(orderedLatencies({ us: 30, eu: 30, ap: 10 })).toEqual([
      ['ap', 10],
      ['eu', 30],
      ['us', 30],
    ]);
  });

  it('allows only regions within the cap in force (latency <= cap), and says when it relaxes', () => {
    expect(latencyPlan({ latencies, createdAt }, createdAt, rules)).toEqual({
      regions: ['eu'],
      otherRegions: false,
      maxLatencyMs: 50,
      relaxesAt: 15_000,
    });
    expect(latencyPlan({ latencies, createdAt }, createdAt + 4_999, rules)?.regions).toEqual(['eu']);
    expect(latencyPlan({ latencies, createdAt }, createdAt + 5_000, rules)).toEqual({
      regions: ['eu', 'us'],
      otherRegions: false,
      maxLatencyMs: 100,
      relaxesAt: 35_000,
    });
    expect(latencyPlan({ latencies: { eu: 50 }, createdAt }, createdAt, rules)?.regions).toEqual(['eu']);
  });

  it('allows every reported region after the last policy, unreported ones only when configured', () => {
    expect(latencyPlan({ latencies, createdAt }, createdAt + 25_000, rules)).toEqual({
      regions: ['eu', 'us', 'ap'],
      otherRegions: false,
      maxLatencyMs: null,
      relaxesAt: null,
    });
    const open = { ...rules, allowUnreportedRegions: true };
    expect(latencyPlan({ latencies, createdAt }, createdAt + 25_000, open)?.otherRegions).toBe(true);
    expect(latencyPlan({ latencies, createdAt }, createdAt + 24_999, open)?.otherRegions).toBe(false);
  });

  it('has no cap with no policies', () => {
    const none = { latencyPolicies: [], allowUnreportedRegions: false };
    expect(latencyPlan({ latencies, createdAt }, createdAt, none)).toEqual({
      regions: ['eu', 'us', 'ap'],
      otherRegions: false,
      maxLatencyMs: null,
      relaxesAt: null,
    });
  });

  it('has no plan for a session that reported no latency (every region, as before)', () => {
    expect(latencyPlan({ createdAt }, createdAt, rules)).toBeNull();
    expect(latencyPlan({ latencies: {}, createdAt }, createdAt, rules)).toBeNull();
    expect(latencyPlan({ latencies: { eu: Number.NaN }, createdAt }, createdAt, rules)).toBeNull();
  });

  it('may allow no region yet: nothing reported within the cap', () => {
    expect(latencyPlan({ latencies: { ap: 150 }, createdAt }, createdAt, rules)?.regions).toEqual([]);
  });
});
