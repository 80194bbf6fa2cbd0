import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { collectRuntimeMetrics } from '../../src/metrics/runtime-metrics.js';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** Series a metric definition exposes: histograms add _bucket, _sum and _count. */
function seriesOf(name: string, type: string): string[] {
  return type === 'histogram' ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
}

/** Every series Prometheus can hold for the VCA: the gateway's, prom-client's defaults, the probes', `up`. */
async function knownSeries(): Promise<Set<string>> {
  const known = new Set(['up']);
  for (const file of ['src/metrics/vca-metrics.ts', 'gpu-probe/src/probe-metrics.ts']) {
    for (const match of read(file).matchAll(/new (Counter|Gauge|Histogram)\(\{\s*name: '(\w+)'/g))
      for (const series of seriesOf(match[2]!, match[1]!.toLowerCase())) known.add(series);
  }
  const registry = new Registry();
  collectRuntimeMetrics(registry).stop();
  for (const { name, type } of await registry.getMetricsAsJSON())
    for (const series of seriesOf(name, String(type))) known.add(series);
  return known;
}

/** Grafana's reference to the dashboard's data source variable. */
const datasourceVariable = '$' + '{datasource}';

const promqlWords = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
]);

/** Metric names a PromQL expression reads (label matchers, grouping labels, strings and ranges removed). */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const match of stripped.matchAll(/(?<![\w$.])([a-zA-Z_:][\w:]*)(?!\w)(\s*\()?/g)) {
    if (match[2] || promqlWords.has(match[1]!)) continue;
    names.push(match[1]!);
  }
  return names;
}

function ruleExpressions(): string[] {
  const rules = parse(read('deploy/prometheus/vca-alerts.yml')) as {
    groups: { rules: { expr: string }[] }[];
  };
  return rules.groups.flatMap((group) => group.rules.map((rule) => rule.expr));
}

function dashboardExpressions(): string[] {
  const dashboard = JSON.parse(read('deploy/grafana/vca-dashboard.json'));
  const exprs: string[] = [];
  for (const panel of dashboard.panels) for (const target of panel.targets ?? []) exprs.push(target.expr);
  for (const variable of dashboard.templating.list)
    if (variable.type === 'query')
      exprs.push(variable.definition.replace(/^label_values\((.*),\s*\w+\)$/, '$1'));
  return exprs;
}

describe('deploy: every series the alert rules and the dashboard read exists', () => {
  let known: Set<string>;
  beforeAll(async () => {
    known = await knownSeries();
  });

  it('knows the gateway, runtime and probe series (the extraction works)', () => {
    for (const name of [
      'vca_sessions_queued',
      'vca_queue_wait_seconds_bucket',
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_gc_duration_seconds_sum',
      'gpu_probe_stale',
    ])
      expect(known).toContain(name);
    expect(
      metricNamesIn(
        'histogram_quantile(0.9, sum by (le) (rate(vca_queue_wait_seconds_bucket{a="b"}[10m]))) > 60',
      ),
    ).toEqual(['vca_queue_wait_seconds_bucket']);
    expect(metricNamesIn('max by (job) (vca_sessions_queued) > 0 and up{job="x"} == 0')).toEqual([
      'vca_sessions_queued',
      'up',
    ]);
    expect(known).not.toContain('vca_sessions_waiting');
  });

  it('vca-alerts.yml: every rule reads only existing series', () => {
    const exprs = ruleExpressions();
    expect(exprs.length).toBeGreaterThan(10);
    for (const expr of exprs) {
      const names = metricNamesIn(expr);
      expect(names.length, expr).toBeGreaterThan(0);
      for (const name of names) expect(known.has(name), `${name} in ${expr}`).toBe(true);
    }
  });

  it('vca-dashboard.json: a Grafana dashboard on a datasource variable whose every query reads existing series', () => {
    const dashboard = JSON.parse(read('deploy/grafana/vca-dashboard.json'));
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.templating.list.map((variable: { name: string }) => variable.name)).toEqual([
      'datasource',
      'instance',
    ]);
    for (const panel of dashboard.panels.filter((panel: { type: string }) => panel.type !== 'row'))
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: datasourceVariable });
    const exprs = dashboardExpressions();
    expect(exprs.length).toBeGreaterThan(20);
    for (const expr of exprs) {
      const names = metricNamesIn(expr);
      expect(names.length, expr).toBeGreaterThan(0);
      for (const name of names) expect(known.has(name), `${name} in ${expr}`).toBe(true);
    }
  });
});
