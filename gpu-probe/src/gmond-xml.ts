/**
 * Reads the XML dump that Ganglia's gmond writes to whoever connects to its `tcp_accept_channel` (port
 * 8649 by default): `GANGLIA_XML > CLUSTER > HOST > METRIC` with the metric's `NAME`, `VAL`, `TYPE`,
 * `UNITS` and its age `TN` against `TMAX`/`DMAX` (seconds). gmetad's dump nests the same under `GRID`,
 * which is walked too. Only the shape is read here; what the metrics mean is gmond-gpu-metrics.ts.
 */
import { XMLParser } from 'fast-xml-parser';

export interface GmondMetric {
  name: string;
  /** The value as gmond printed it (`%u`, `%f`, or the string); interpreting it is the caller's job. */
  value: string;
  /** `string`, `uint32`, `float`, ... */
  type: string;
  units: string;
  /** Seconds since gmond last received this metric. */
  secondsSinceReport: number | null;
  /** Longest the sender promised to go between two reports (its time_threshold, gmetric `-x`). */
  maxSecondsBetweenReports: number | null;
  /** Lifetime after the last report; 0 means forever. */
  lifetimeSeconds: number | null;
}

export interface GmondHost {
  name: string;
  ip: string;
  cluster: string;
  metrics: Map<string, GmondMetric>;
}

/** The XML text is not a gmond (or gmetad) dump. */
export class GmondXmlError extends Error {}

type XmlNode = Record<string, unknown>;

const repeated = new Set(['GRID', 'CLUSTER', 'HOST', 'METRIC', 'EXTRA_ELEMENT']);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  ignoreDeclaration: true,
  isArray: (tagName) => repeated.has(tagName),
});

function attribute(node: XmlNode, name: string): string {
  const value = node[name];
  return typeof value === 'string' ? value : '';
}

function seconds(node: XmlNode, name: string): number | null {
  const text = attribute(node, name).trim();
  if (!/^\d+$/.test(text)) return null;
  return Number(text);
}

function children(node: XmlNode, name: string): XmlNode[] {
  const value = node[name];
  return Array.isArray(value) ? (value as XmlNode[]).filter((child) => typeof child === 'object') : [];
}

function readHost(node: XmlNode, cluster: string): GmondHost {
  const metrics = new Map<string, GmondMetric>();
  for (const metric of children(node, 'METRIC')) {
    const name = attribute(metric, 'NAME');
    if (name === '') continue;
    metrics.set(name, {
      name,
      value: attribute(metric, 'VAL'),
      type: attribute(metric, 'TYPE'),
      units: attribute(metric, 'UNITS'),
      secondsSinceReport: seconds(metric, 'TN'),
      maxSecondsBetweenReports: seconds(metric, 'TMAX'),
      lifetimeSeconds: seconds(metric, 'DMAX'),
    });
  }
  return { name: attribute(node, 'NAME'), ip: attribute(node, 'IP'), cluster, metrics };
}

function collectHosts(node: XmlNode, hosts: GmondHost[]): void {
  for (const grid of children(node, 'GRID')) collectHosts(grid, hosts);
  for (const cluster of children(node, 'CLUSTER')) {
    const clusterName = attribute(cluster, 'NAME');
    for (const host of children(cluster, 'HOST')) hosts.push(readHost(host, clusterName));
  }
}

/** Every HOST of the dump, in document order. Throws GmondXmlError when there is no GANGLIA_XML root. */
export function readGmondXml(text: string): GmondHost[] {
  // gmond closes the connection after the last byte: a dump cut short (gmond killed mid-write) would
  // otherwise parse as a smaller, wrong one.
  if (!/<\/GANGLIA_XML>\s*$/.test(text))
    throw new GmondXmlError('the dump is cut short (no closing GANGLIA_XML)');
  let document: XmlNode;
  try {
    document = parser.parse(text) as XmlNode;
  } catch (error) {
    throw new GmondXmlError(`not XML: ${(error as Error).message}`);
  }
  if (!('GANGLIA_XML' in document))
    throw new GmondXmlError('no GANGLIA_XML element: this is not what gmond answers');
  const root = document.GANGLIA_XML;
  const hosts: GmondHost[] = [];
  // An empty root (a gmond that has heard from no host yet) parses as a string.
  if (typeof root === 'object' && root !== null) collectHosts(root as XmlNode, hosts);
  return hosts;
}
