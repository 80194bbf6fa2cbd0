/**
 * The fleet view: nodes by state and group, one row per node and one per GPU, in a virtualised list —
 * only the rows in view (plus a margin) exist in the DOM, each a fixed height, so a fleet of
 * thousands of nodes costs a few dozen elements. A row re-renders only when its node's version moved.
 */
import { Component } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { Sparkline } from './charts.js';
import { type ConsoleModel, type FleetRow, fullShare, type NodeEntry } from './model.js';

export const rowHeight = 40;
const overscan = 6;

interface Dimension {
  key: 'gpu' | 'encoder' | 'vram' | 'sessions';
  label: string;
  committed: number;
  measured: number | null;
  effective: number;
  /** Where the placement headroom ends, percent. */
  limit: number | null;
  text: string;
}

function percent(value: number, of: number): number {
  if (!(of > 0)) return 0;
  return Math.max(0, Math.min(100, (value / of) * 100));
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

function dimensions(gpu: NodeEntry['view']['gpus'][number]): Dimension[] {
  const vramTotal = gpu.memoryTotalMiB;
  const sessionsTotal = Math.max(gpu.capacity.encoderSessions, 0);
  const measured = gpu.measured;
  return [
    {
      key: 'gpu',
      label: 'render',
      committed: percent(gpu.committed.gpu, fullShare),
      measured: measured.gpu === null ? null : percent(measured.gpu, fullShare),
      effective: percent(gpu.effective.gpu, fullShare),
      limit: percent(gpu.capacity.gpu, fullShare),
      text: `${round(percent(gpu.effective.gpu, fullShare))}%`,
    },
    {
      key: 'encoder',
      label: 'encoder',
      committed: percent(gpu.committed.encoder, fullShare),
      measured: measured.encoder === null ? null : percent(measured.encoder, fullShare),
      effective: percent(gpu.effective.encoder, fullShare),
      limit: percent(gpu.capacity.encoder, fullShare),
      text: `${round(percent(gpu.effective.encoder, fullShare))}%`,
    },
    {
      key: 'vram',
      label: 'VRAM',
      committed: percent(gpu.committed.vramMiB, vramTotal),
      measured: measured.vramMiB === null ? null : percent(measured.vramMiB, vramTotal),
      effective: percent(gpu.effective.vramMiB, vramTotal),
      limit: vramTotal > 0 ? percent(gpu.capacity.vramMiB, vramTotal) : null,
      text: `${Math.round(gpu.effective.vramMiB / 1024)}/${Math.round(vramTotal / 1024)} GiB`,
    },
    {
      key: 'sessions',
      label: 'encoder sessions',
      committed: percent(gpu.committed.encoderSessions, sessionsTotal),
      measured: measured.encoderSessions === null ? null : percent(measured.encoderSessions, sessionsTotal),
      effective: percent(gpu.effective.encoderSessions, sessionsTotal),
      limit: null,
      text: `${gpu.effective.encoderSessions}/${sessionsTotal || '∞'}`,
    },
  ];
}

/** One dimension: committed (top), measured (middle, hatched when unknown), effective (bottom). */
function LoadBar({ dim, node, gpu }: { dim: Dimension; node: string; gpu: number }) {
  const effective = round(dim.effective);
  return (
    <div
      class="load"
      data-dim={dim.key}
      data-committed={round(dim.committed)}
      data-measured={dim.measured === null ? 'unknown' : round(dim.measured)}
      data-effective={effective}
      title={`${dim.label}: committed ${round(dim.committed)}% · measured ${dim.measured === null ? 'unknown' : `${round(dim.measured)}%`} · effective ${effective}%`}
    >
      <meter
        class="visually-hidden"
        min={0}
        max={100}
        value={effective}
        aria-label={`${node} GPU ${gpu} ${dim.label}: committed ${round(dim.committed)}%, measured ${dim.measured === null ? 'unknown' : `${round(dim.measured)}%`}, effective ${effective}%`}
      />
      <span class="load-label" aria-hidden="true">
        {dim.label}
      </span>
      <span class="track">
        <span class="fill committed" style={{ width: `${dim.committed}%` }} />
        {dim.measured === null ? (
          <span class="fill unknown" />
        ) : (
          <span class="fill measured" style={{ width: `${dim.measured}%` }} />
        )}
        <span class="fill effective" style={{ width: `${dim.effective}%` }} />
        {dim.limit !== null && dim.limit < 100 ? (
          <span class="limit" style={{ left: `${dim.limit}%` }} />
        ) : null}
      </span>
      <span class="load-text">{dim.text}</span>
    </div>
  );
}

interface RowProps {
  row: FleetRow;
  entry: NodeEntry | undefined;
  version: number;
  top: number;
  onDrain: (id: string) => void;
  onUndrain: (id: string) => void;
}

/** A row of the list; re-renders only when its node's version or its position changed. */
class FleetListRow extends Component<RowProps> {
  override shouldComponentUpdate(next: RowProps): boolean {
    const { props } = this;
    return next.version !== props.version || next.top !== props.top || next.row !== props.row;
  }

  override render() {
    const { row, entry, top } = this.props;
    const style = { transform: `translateY(${top}px)` };
    if (row.kind === 'group')
      return (
        <li class="row group-row" style={style} data-row="group" data-state={row.state}>
          <span class={`state state-${row.state}`}>{row.state}</span>
          <span class="group-name">{row.group}</span>
          <span class="muted">
            {row.nodes} node{row.nodes === 1 ? '' : 's'}, {row.gpus} GPU{row.gpus === 1 ? '' : 's'}
          </span>
        </li>
      );
    if (entry === undefined) return null;
    const node = entry.view;
    if (row.kind === 'node') {
      const drainable = node.state === 'ready' || node.state === 'provisioning' || node.state === 'unhealthy';
      return (
        <li class="row node-row" style={style} data-row="node" data-node={node.id} data-state={node.state}>
          <span class="node-id">{node.id}</span>
          <span class={`state state-${node.state}`}>{node.state}</span>
          <span class="muted">
            {node.host}:{node.port} · {node.labels.region ?? 'no region'} · {node.sessions} session
            {node.sessions === 1 ? '' : 's'}
            {node.drainDeadline !== null
              ? ` · deadline ${new Date(node.drainDeadline).toLocaleTimeString()}`
              : ''}
          </span>
          <span class="actions">
            {drainable ? (
              <button
                type="button"
                class="action"
                onClick={() => this.props.onDrain(node.id)}
                aria-label={`Drain ${node.id}`}
              >
                Drain…
              </button>
            ) : null}
            {node.state === 'draining' ? (
              <button
                type="button"
                class="action"
                onClick={() => this.props.onUndrain(node.id)}
                aria-label={`Undrain ${node.id}`}
              >
                Undrain…
              </button>
            ) : null}
          </span>
        </li>
      );
    }
    const gpu = node.gpus[row.index];
    if (gpu === undefined) return null;
    return (
      <li class="row gpu-row" style={style} data-row="gpu" data-node={node.id} data-gpu={gpu.index}>
        <span class="gpu-name" title={gpu.name ?? gpu.model}>
          GPU {gpu.index} · {gpu.model}
        </span>
        <span class="bars">
          {dimensions(gpu).map((dim) => (
            <LoadBar key={dim.key} dim={dim} node={node.id} gpu={gpu.index} />
          ))}
        </span>
        <span class="gpu-flags">
          <span class={gpu.temperatureCelsius !== null && gpu.temperatureCelsius >= 85 ? 'flag hot' : 'flag'}>
            {gpu.temperatureCelsius === null ? '–°C' : `${gpu.temperatureCelsius}°C`}
          </span>
          {gpu.throttleActive ? <span class="flag warn">throttling</span> : null}
          {gpu.stale ? (
            <span class="flag warn" data-stale="true">
              stale
            </span>
          ) : null}
          {!gpu.eligible && !gpu.stale ? <span class="flag muted">ineligible</span> : null}
        </span>
        <Sparkline
          values={entry.history[row.index] ?? []}
          label={`${node.id} GPU ${gpu.index} render load, last 15 minutes`}
        />
      </li>
    );
  }
}

export function FleetView({
  model,
  onDrain,
  onUndrain,
}: {
  model: ConsoleModel;
  onDrain: (id: string) => void;
  onUndrain: (id: string) => void;
}) {
  const [filter, setFilter] = useState('');
  const [, setTick] = useState(0);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const scroller = useRef<HTMLElement>(null);

  useEffect(() => model.subscribe(() => setTick((tick) => tick + 1)), [model]);
  useEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const measure = () => setViewport(element.clientHeight || 600);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);

  const rows = model.fleetRows(filter);
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(rows.length, Math.ceil((scrollTop + viewport) / rowHeight) + overscan);
  const visible = rows.slice(first, last);
  const byState = new Map<string, number>();
  for (const entry of model.nodes.values())
    byState.set(entry.view.state, (byState.get(entry.view.state) ?? 0) + 1);

  return (
    <section aria-labelledby="fleet-heading" class="view fleet-view">
      <div class="toolbar">
        <h2 id="fleet-heading">Fleet</h2>
        <span class="muted" data-testid="fleet-counts">
          {model.nodes.size} nodes
          {[...byState].map(([state, count]) => ` · ${count} ${state}`).join('')}
        </span>
        <label class="inline">
          Filter nodes
          <input
            type="search"
            value={filter}
            placeholder="id, group, region or model"
            onInput={(event) => setFilter((event.target as HTMLInputElement).value)}
          />
        </label>
        <span class="legend" aria-hidden="true">
          <span class="swatch committed" /> committed <span class="swatch measured" /> measured{' '}
          <span class="swatch effective" /> effective
        </span>
      </div>
      <section
        class="scroller"
        ref={scroller}
        aria-label="Nodes and GPUs"
        data-testid="fleet-scroller"
        onScroll={(event) => setScrollTop((event.target as HTMLElement).scrollTop)}
      >
        <ul class="spacer" style={{ height: `${rows.length * rowHeight}px` }}>
          {visible.map((row, offset) => {
            const entry = row.kind === 'group' ? undefined : model.nodes.get(row.id);
            return (
              <FleetListRow
                key={row.key}
                row={row}
                entry={entry}
                version={entry?.version ?? 0}
                top={(first + offset) * rowHeight}
                onDrain={onDrain}
                onUndrain={onUndrain}
              />
            );
          })}
        </ul>
        {rows.length === 0 ? <p class="empty">No nodes registered yet.</p> : null}
      </section>
    </section>
  );
}
