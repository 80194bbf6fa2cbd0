/**
 * The console's smaller views: queue, sessions (filter, end one), autoscaler, events timeline and
 * learned title costs. Each reads the model or calls the REST API with the operator's token.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ConsoleEventKind } from '../../src/http/console-protocol.js';
import { api } from './api.js';
import { QueueChart } from './charts.js';
import type { ConsoleModel } from './model.js';

export function duration(ms: number | null): string {
  if (ms === null) return '–';
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function clock(at: number | null): string {
  return at === null ? '–' : new Date(at).toLocaleTimeString();
}

export function useModel(model: ConsoleModel): void {
  const [, setTick] = useState(0);
  useEffect(() => model.subscribe(() => setTick((tick) => tick + 1)), [model]);
}

export function QueueView({ model }: { model: ConsoleModel }) {
  useModel(model);
  const queue = model.summary?.queue;
  return (
    <section aria-labelledby="queue-heading" class="view">
      <h2 id="queue-heading">Queue</h2>
      <div class="cards">
        <div class="card">
          <span class="card-label">Queued sessions</span>
          <span class="card-value" data-testid="queue-length">
            {queue?.length ?? '–'}
          </span>
        </div>
        <div class="card">
          <span class="card-label">Oldest wait</span>
          <span class="card-value" data-testid="queue-oldest">
            {duration(queue?.oldestWaitMs ?? null)}
          </span>
        </div>
      </div>
      <table class="table">
        <caption>By priority class (highest first)</caption>
        <thead>
          <tr>
            <th scope="col">Class</th>
            <th scope="col">Queued</th>
            <th scope="col">Oldest wait</th>
          </tr>
        </thead>
        <tbody>
          {(queue?.byPriority ?? []).map((entry) => (
            <tr key={entry.priority}>
              <th scope="row">{entry.priority}</th>
              <td>{entry.length}</td>
              <td>{duration(entry.oldestWaitMs)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Queue length, last 15 minutes</h3>
      <QueueChart
        values={model.queueHistory}
        sampleMs={model.historySampleMs}
        now={Date.now() + model.clockSkewMs}
      />
    </section>
  );
}

interface SessionRow {
  id: string;
  state: string;
  game: string;
  width: number;
  height: number;
  fps: number;
  priority: string;
  node: string | null;
  gpu: number | null;
  region: string | null;
  createdAt: number;
  position: number | null;
}

export function SessionsView({
  token,
  confirm,
}: {
  token: string;
  confirm: (title: string, body: string, action: () => Promise<string | undefined>) => void;
}) {
  const [game, setGame] = useState('');
  const [node, setNode] = useState('');
  const [region, setRegion] = useState('');
  const [rows, setRows] = useState<SessionRow[] | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [truncated, setTruncated] = useState(false);
  /** Only the latest request's answer is shown (an earlier one may come back later). */
  const latest = useRef(0);

  const load = async () => {
    const ticket = ++latest.current;
    const query = new URLSearchParams();
    if (game.trim()) query.set('game', game.trim());
    if (node.trim()) query.set('node', node.trim());
    if (region.trim()) query.set('region', region.trim());
    const result = await api<{ sessions: SessionRow[]; truncated: boolean }>(
      token,
      'GET',
      `/v1/operator/sessions${query.size ? `?${query}` : ''}`,
    );
    if (ticket !== latest.current) return;
    if (!result.ok || !result.body) {
      setError(result.error);
      return;
    }
    setError(undefined);
    setRows(result.body.sessions);
    setTruncated(result.body.truncated);
  };
  useEffect(() => {
    void load();
  }, []);

  const end = (row: SessionRow) =>
    confirm(
      `End session ${row.id}?`,
      `The gamer's ${row.game} stream ${row.node ? `on ${row.node}` : 'in the queue'} ends now.`,
      async () => {
        const result = await api(token, 'DELETE', `/v1/operator/sessions/${encodeURIComponent(row.id)}`);
        if (!result.ok) return result.error;
        await load();
        return undefined;
      },
    );

  return (
    <section aria-labelledby="sessions-heading" class="view">
      <h2 id="sessions-heading">Sessions</h2>
      <form
        class="filters"
        onSubmit={(event) => {
          event.preventDefault();
          void load();
        }}
      >
        <label>
          Title
          <input
            name="game"
            value={game}
            onInput={(event) => setGame((event.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          Node
          <input
            name="node"
            value={node}
            onInput={(event) => setNode((event.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          Region
          <input
            name="region"
            value={region}
            onInput={(event) => setRegion((event.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit">Apply filter</button>
      </form>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {rows === undefined ? (
        <p class="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <p class="muted">No live sessions match.</p>
      ) : (
        <table class="table" data-testid="sessions-table">
          <caption>
            {rows.length} session{rows.length === 1 ? '' : 's'}
            {truncated ? ' (more exist: narrow the filter)' : ''}
          </caption>
          <thead>
            <tr>
              <th scope="col">Session</th>
              <th scope="col">State</th>
              <th scope="col">Title</th>
              <th scope="col">Format</th>
              <th scope="col">Node / GPU</th>
              <th scope="col">Region</th>
              <th scope="col">Since</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.id} data-session={row.id}>
                <td class="mono">{row.id}</td>
                <td>{row.state === 'queued' ? `queued #${row.position}` : row.state}</td>
                <td>{row.game}</td>
                <td>
                  {row.width}x{row.height}@{row.fps}
                </td>
                <td>{row.node ? `${row.node} / ${row.gpu}` : '–'}</td>
                <td>{row.region ?? '–'}</td>
                <td>{clock(row.createdAt)}</td>
                <td>
                  <button
                    type="button"
                    class="action"
                    onClick={() => end(row)}
                    aria-label={`End session ${row.id}`}
                  >
                    End…
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function AutoscalerView({ model }: { model: ConsoleModel }) {
  useModel(model);
  const view = model.summary?.autoscaler;
  if (!view)
    return (
      <section class="view">
        <h2>Autoscaler</h2>
        <p class="muted">Waiting for the gateway…</p>
      </section>
    );
  const now = Date.now() + model.clockSkewMs;
  const cooldown = (until: number | null) => (until === null ? 'none' : `${duration(until - now)} left`);
  return (
    <section aria-labelledby="autoscaler-heading" class="view">
      <h2 id="autoscaler-heading">Autoscaler {view.enabled ? '' : '(disabled)'}</h2>
      <div class="cards">
        <div class="card">
          <span class="card-label">Free reference slots / buffer</span>
          <span class="card-value" data-testid="autoscaler-buffer">
            {view.freeReferenceSlots} / {view.bufferReferenceSlots}
          </span>
        </div>
        <div class="card">
          <span class="card-label">Nodes min / max</span>
          <span class="card-value">
            {view.minNodes} / {view.maxNodes}
          </span>
        </div>
        <div class="card">
          <span class="card-label">Scale-up cooldown</span>
          <span class="card-value">{cooldown(view.scaleUpCooldownUntil)}</span>
        </div>
        <div class="card">
          <span class="card-label">Scale-down cooldown</span>
          <span class="card-value">{cooldown(view.scaleDownCooldownUntil)}</span>
        </div>
      </div>
      <h3>Last decision</h3>
      <p>
        {view.lastDecision
          ? `${clock(view.lastDecision.at)}: ${view.lastDecision.action} — ${view.lastDecision.reason}`
          : 'none yet'}
      </p>
      <h3>Pending scale-downs (draining victims)</h3>
      <p>{view.drainingVictims.length ? view.drainingVictims.join(', ') : 'none'}</p>
      <h3>Last signals</h3>
      {view.lastSignals.length === 0 ? (
        <p class="muted">none yet</p>
      ) : (
        <ul class="timeline">
          {[...view.lastSignals].reverse().map((event) => (
            <li key={event.seq}>
              <time>{clock(event.at)}</time> {event.text}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

const eventKinds: ConsoleEventKind[] = [
  'webhook',
  'registration',
  'drain',
  'migration',
  'callback',
  'signal',
  'session',
  'node',
  'error',
];

export function EventsView({ model }: { model: ConsoleModel }) {
  useModel(model);
  const [kind, setKind] = useState<string>('');
  const events = model.events
    .filter((event) => kind === '' || event.kind === kind)
    .slice(-300)
    .reverse();
  return (
    <section aria-labelledby="events-heading" class="view">
      <div class="toolbar">
        <h2 id="events-heading">Events</h2>
        <label class="inline">
          Kind
          <select value={kind} onChange={(event) => setKind((event.target as HTMLSelectElement).value)}>
            <option value="">all</option>
            {eventKinds.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
      </div>
      {events.length === 0 ? (
        <p class="muted">No events yet.</p>
      ) : (
        <ol class="timeline" data-testid="events" aria-live="polite">
          {events.map((event) => (
            <li key={event.seq} data-kind={event.kind}>
              <time>{clock(event.at)}</time> <span class={`kind kind-${event.kind}`}>{event.kind}</span>{' '}
              {event.text}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

interface LearnedCost {
  game: string;
  model: string;
  dimension: 'gpu' | 'encoder' | 'vram';
  catalog: number;
  learned: number;
  ratio: number;
  confidence: number;
  active: boolean;
}

/** Render and encoder costs are parts per million of the GPU; VRAM is MiB. */
function costText(dimension: string, value: number): string {
  if (dimension === 'vram') return `${Math.round(value)} MiB`;
  return `${(Number(value) / 10_000).toFixed(1)}% of the GPU`;
}

export function CostsView({ token }: { token: string }) {
  const [state, setState] = useState<{ costs?: LearnedCost[]; message?: string }>({});
  useEffect(() => {
    void api<{ costs: LearnedCost[] }>(token, 'GET', '/v1/costs').then((result) => {
      if (result.status === 404 || (result.ok && (result.body?.costs?.length ?? 0) === 0))
        setState({ message: 'No learned costs yet.' });
      else if (!result.ok || !Array.isArray(result.body?.costs))
        setState({ message: `Learned costs are not available: ${result.error ?? 'unexpected answer'}` });
      else setState({ costs: result.body.costs });
    });
  }, [token]);
  return (
    <section aria-labelledby="costs-heading" class="view">
      <h2 id="costs-heading">Learned title costs</h2>
      {state.costs === undefined ? (
        <p class="muted" data-testid="costs-message">
          {state.message ?? 'Loading…'}
        </p>
      ) : (
        <table class="table" data-testid="costs-table">
          <caption>
            Catalog estimate against what the fleet measured (render and encoder as a share of the GPU, VRAM
            in MiB)
          </caption>
          <thead>
            <tr>
              <th scope="col">Title</th>
              <th scope="col">GPU model</th>
              <th scope="col">Dimension</th>
              <th scope="col">Catalog</th>
              <th scope="col">Learned</th>
              <th scope="col">Ratio</th>
              <th scope="col">Confidence</th>
              <th scope="col">In use</th>
            </tr>
          </thead>
          <tbody>
            {state.costs.map((cost) => (
              <tr key={`${cost.game}/${cost.model}/${cost.dimension}`}>
                <td>{cost.game}</td>
                <td>{cost.model}</td>
                <td>{cost.dimension}</td>
                <td>{costText(cost.dimension, cost.catalog)}</td>
                <td>{costText(cost.dimension, cost.learned)}</td>
                <td>{Number(cost.ratio).toFixed(2)}</td>
                <td>{Math.round(Number(cost.confidence) * 100)}%</td>
                <td>{cost.active ? 'yes' : 'no'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
