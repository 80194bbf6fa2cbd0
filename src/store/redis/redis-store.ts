/**
 * The Redis store: the StateStore contract over one Redis (or one Redis Cluster slot), shared by
 * several gateway instances. Every mutating operation is one Lua script (one FCALL round trip) that
 * mirrors the embedded store's semantics exactly; this module only prepares arguments, turns replies
 * into views and records, and maps failures to VcaErrors. Key layout: keys.ts; scripts: scripts/*.lua.
 */

import type { Writable } from 'node:stream';
import { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { CatalogIndex } from '../../cost/catalog.js';
import {
  canHostStreams,
  capacityShare,
  type LoadVector,
  percentToShare,
  zeroLoad,
} from '../../cost/session-cost.js';
import { type ErrorCode, errorCatalog, isVcaError, VcaError } from '../../errors.js';
import { effectiveOn, sampleReference } from '../../fleet/effective-load.js';
import type { NodeState } from '../../fleet/node-state.js';
import { telemetryGpuOf } from '../../fleet/node-view.js';
import { type NodeRegistration, reserveFloor } from '../../fleet/render-node.js';
import type { TelemetryReport } from '../../fleet/telemetry.js';
import { orderedLatencies } from '../../placement/latency-policy.js';
import type { PlacementStrategy } from '../../placement/strategy.js';
import {
  defaultRetainEndedMs,
  type EndReason,
  newSessionRecord,
  type SessionRecord,
  type SessionSpec,
  type SessionTransport,
} from '../../sessions/session.js';
import type {
  AuditReport,
  CreateSessionOptions,
  CreateSessionOutcome,
  DrainNodesOptions,
  GpuView,
  MigrateOutcome,
  NodeView,
  OutboxEntry,
  ReportTelemetryOptions,
  SessionEnd,
  StateStore,
  TelemetryGpu,
  TelemetryOutcome,
  WebhookMemory,
} from '../../state/state-store.js';
import type { EmbeddedStoreOptions } from '../embedded/embedded-store.js';
import {
  costText,
  type GpuHashField,
  type NodeHashField,
  parseCost,
  sessionReplyFields,
  sessionReplyPosition,
} from './hash-layouts.js';
import { type RedisKeys, redisKeys } from './keys.js';
import { settingsArgument } from './script-settings.js';
import { defineScripts, loadScripts, type ScriptCall, type ScriptName } from './scripts.js';

/**
 * Where a store connects when it creates its own client: one server (a `redis://` URL); a master
 * watched by Sentinel (the client asks the sentinels for the master and follows failovers; `password`
 * is the data nodes', `sentinelPassword` the sentinels'); or Redis Cluster from seed nodes (every key
 * of one gaming cluster lives in one slot: one hash tag).
 */
export type RedisConnection =
  | string
  | { sentinels: RedisAddress[]; masterName: string; password?: string; sentinelPassword?: string }
  | { clusterNodes: RedisAddress[]; password?: string };

export interface RedisAddress {
  host: string;
  port: number;
}

/** Either kind of ioredis client: a connection to one server (possibly via Sentinel) or to a Cluster. */
export type RedisClient = Redis | Cluster;

export interface RedisStoreOptions extends EmbeddedStoreOptions {
  /**
   * Where to connect (the store creates, owns and closes its client: no offline queue, one retry, so
   * calls fail fast while Redis is down and ioredis reconnects by itself), or a client the caller owns:
   * the store uses it as configured and never closes it.
   */
  redis: RedisClient | RedisConnection;
  keyPrefix: string;
  /** The gaming cluster: the Redis hash tag of every key, so one cluster lives in one slot. */
  cluster: string;
  /**
   * For a client the store creates: a command unanswered this long fails as unavailable, ms (default
   * 5000). A timed-out script may still run later in Redis; a session it assigned then lives until its
   * lease expires, so keep this well above the worst queueing delay under load.
   */
  commandTimeoutMs?: number;
  logger?: Logger;
}

const defaultCommandTimeoutMs = 5_000;
/** Nodes per script when the whole fleet is read: ~10 ms of Redis time each on the 2-core bench machine. */
export const listNodesPage = 100;
/** `ping()` answers health checks: it gives up sooner than a command. */
const pingTimeoutMs = 2_000;

/** Redis refusals that mean "not available now" rather than a bug. */
const unavailableReplies = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|NOREPLICAS|OOM)\b/;
/** A script's error: `<VCA_ERR_CODE> <message>`, with the script location Redis appends to raised errors. */
const scriptError = /^(VCA_ERR_[A-Z_]+) ([\s\S]*?)(?: script: [0-9a-f]+, on @user_script:\d+\.)?$/;

function toStoreError(error: unknown): unknown {
  if (isVcaError(error)) return error;
  const failure = error as Error;
  if (failure?.name === 'ReplyError') {
    const match = scriptError.exec(failure.message);
    if (match && match[1]! in errorCatalog) {
      const code = match[1] as ErrorCode;
      return new VcaError(
        code,
        match[2],
        code === 'VCA_ERR_GPU_NOT_FOUND' ? { field: 'gpus.index' } : undefined,
      );
    }
    if (!unavailableReplies.test(failure.message)) return error;
  }
  return new VcaError(
    'VCA_ERR_STORE_UNAVAILABLE',
    `Redis did not answer: ${failure?.message ?? String(error)}`,
  );
}

/**
 * A refusal a script answers instead of raising ({'refused', code, node id, message}, nothing written),
 * so the error can name the node: the embedded store's `extra.nodeId`.
 */
function refusal(reply: readonly [string, string, string, string]): VcaError {
  const [, code, nodeId, message] = reply;
  if (!(code in errorCatalog)) return new VcaError('VCA_ERR_INTERNAL', `unknown refusal ${code}`);
  return new VcaError(code as ErrorCode, message, { nodeId });
}

/** A hash as HGETALL answers it (field, value, ...), by field name. */
function hashOf<Field extends string>(flat: unknown): Partial<Record<Field, string>> {
  const list = flat as string[];
  const hash: Partial<Record<string, string>> = {};
  for (let i = 0; i + 1 < list.length; i += 2) hash[list[i]!] = list[i + 1]!;
  return hash;
}

function nullableNumber(value: string | undefined): number | null {
  return value === undefined || value === '' ? null : Number(value);
}

/** A session reply of the scripts (the sessionReplyFields values, in order) as the SessionRecord. */
function parseSession(reply: unknown): SessionRecord {
  const fields = reply as string[];
  const at = sessionReplyPosition;
  const record = JSON.parse(fields[at.spec]!) as SessionRecord;
  record.state = fields[at.state] as SessionRecord['state'];
  record.queuedAt = nullableNumber(fields[at.queuedAt]);
  record.queueDeadline = nullableNumber(fields[at.queueDeadline]);
  record.assignedAt = nullableNumber(fields[at.assignedAt]);
  record.endedAt = nullableNumber(fields[at.endedAt]);
  const endReason = fields[at.endReason];
  record.endReason = endReason ? (endReason as EndReason) : null;
  const nodeId = fields[at.node];
  record.placement = nodeId
    ? {
        nodeId,
        gpuIndex: Number(fields[at.gpuIndex]),
        model: fields[at.model]!,
        cost: parseCost(fields[at.cost]!),
      }
    : null;
  record.leaseExpiresAt = Number(fields[at.leaseExpiresAt]);
  record.migrations = Number(fields[at.migrations]);
  // The hash field, not the spec JSON: '' (a front-end's session) or missing (a record older than owners).
  record.owner = fields[at.owner] || null;
  return record;
}

/**
 * What the scripts' pick reads of a session's costs: `\n<model>\t<cost>\t<model VRAM MiB>` per model,
 * then `\n` (a pool measures VRAM shares against its model's catalog VRAM, as PlacementIndex does).
 * `cache` holds the text of frozen cost tables (the gateway shares one per session format).
 */
function pickCosts(
  costs: SessionSpec['costs'],
  catalog: CatalogIndex,
  cache: WeakMap<object, string>,
): string {
  const frozen = Object.isFrozen(costs);
  if (frozen) {
    const cached = cache.get(costs);
    if (cached !== undefined) return cached;
  }
  let text = '';
  for (const model in costs) {
    const cost = costs[model];
    if (cost) text += `\n${model}\t${costText(cost)}\t${catalog.model(model).vramMiB}`;
  }
  text += '\n';
  if (frozen) cache.set(costs, text);
  return text;
}

/** Request labels as the scripts read them: JSON with sorted names, '' when there are none. */
function labelsArgument(labels: SessionSpec['labels']): string {
  if (!labels) return '';
  const names = Object.keys(labels).sort();
  if (names.length === 0) return '{}';
  return JSON.stringify(Object.fromEntries(names.map((name) => [name, labels[name]])));
}

/**
 * Reported latencies as the scripts read them (lib/latency.lua): JSON [[region, ms], ...] in the order
 * they are tried (orderedLatencies), '' when there are none (placement as without latencies).
 */
function latenciesArgument(latencies: SessionSpec['latencies']): string {
  if (!latencies) return '';
  const ordered = orderedLatencies(latencies);
  return ordered.length === 0 ? '' : JSON.stringify(ordered);
}

/**
 * The GPUs of record-telemetry's brief answer (scripts/lib/telemetry.lua brief_line): per GPU, ';'
 * between them, "eligible,stale,throttle,mg,me,mv,ms,memoryTotal,rv,ps,model" (the model last).
 */
function briefGpus(text: string): TelemetryGpu[] {
  if (text === '') return [];
  return text.split(';').map((line, index) => {
    const values = line.split(',');
    return {
      index,
      model: values.length > 11 ? values.slice(10).join(',') : values[10]!,
      eligible: values[0] === '1',
      stale: values[1] === '1',
      throttleActive: values[2] === '1',
      memoryTotalMiB: Number(values[7]),
      measured: {
        gpu: nullableNumber(values[3]),
        encoder: nullableNumber(values[4]),
        vramMiB: nullableNumber(values[5]),
        encoderSessions: nullableNumber(values[6]),
      },
      reservedVramMiB: Number(values[8] || 0),
      pending: { encoderSessions: Number(values[9]) },
    };
  });
}

/** A finite number, or '' (unknown) for the scripts. */
function finiteOrEmpty(value: number | null | undefined): number | '' {
  return typeof value === 'number' && Number.isFinite(value) ? value : '';
}

export class RedisStore implements StateStore {
  readonly kind = 'redis' as const;
  readonly client: RedisClient;
  /**
   * The connection telemetry reports go over: a second one when the store made its client, so a
   * placement never waits in Redis behind a backlog of reports (Redis serves its clients in turn,
   * each connection's commands in order); the same client when the caller gave one.
   */
  readonly telemetryClient: RedisClient;
  readonly keys: RedisKeys;
  private readonly ownsClient: boolean;
  private readonly options: RedisStoreOptions;
  private readonly catalog: CatalogIndex;
  private readonly pickCostsCache = new WeakMap<object, string>();
  private readonly scripts: ReadonlyMap<ScriptName, ScriptCall>;
  private readonly telemetryScripts: ReadonlyMap<ScriptName, ScriptCall>;
  /** numberOfKeys, the fixed keys, then ARGV[1] (settings): the head of every script call. */
  private readonly scriptHead: Array<string | number>;
  private readonly gpuCapacity: number;
  private readonly encoderCapacity: number;
  private readonly commandTimeoutMs: number;
  /** Clients corked from the first command of an event-loop turn until its writes flush (coalesceWrites). */
  private readonly corked = new Set<RedisClient>();

  constructor(options: RedisStoreOptions) {
    this.options = options;
    this.catalog = options.catalog;
    this.commandTimeoutMs = options.commandTimeoutMs ?? defaultCommandTimeoutMs;
    this.keys = redisKeys(options.keyPrefix, options.cluster, options.priorityClasses);
    this.gpuCapacity = capacityShare(options.headroom.gpu);
    this.encoderCapacity = capacityShare(options.headroom.encoder);
    if (isConnection(options.redis)) {
      this.ownsClient = true;
      this.client = createClient(options.redis, this.commandTimeoutMs);
      this.telemetryClient = createClient(options.redis, this.commandTimeoutMs);
      this.watchConnection(this.client, options.logger, 'redis store');
      this.watchConnection(this.telemetryClient, options.logger, 'redis store (telemetry connection)');
    } else {
      this.ownsClient = false;
      this.client = options.redis;
      this.telemetryClient = options.redis;
    }
    this.scripts = defineScripts(this.client);
    this.telemetryScripts =
      this.telemetryClient === this.client ? this.scripts : defineScripts(this.telemetryClient);
    const settings = settingsArgument({
      gpuCapacity: this.gpuCapacity,
      encoderCapacity: this.encoderCapacity,
      vramHeadroom: options.headroom.vram,
      temperatureMarginCelsius: options.temperatureMarginCelsius,
      requireTelemetry: options.requireTelemetry,
      staleAfterMs: options.staleAfterMs,
      retainEndedMs: options.retainEndedMs ?? defaultRetainEndedMs,
      latencyPolicies: options.latencyPolicies,
      allowUnreportedRegions: options.allowUnreportedRegions,
      priorityClasses: options.priorityClasses,
    });
    this.scriptHead = [this.keys.scriptKeys.length, ...this.keys.scriptKeys, settings];
  }

  /**
   * Connects a client the store created (a given one is used as it is), loads the scripts and rebuilds
   * the index of draining nodes (data written before it existed is then read right).
   */
  async connect(): Promise<void> {
    try {
      if (this.ownsClient) {
        await Promise.all(
          [this.client, this.telemetryClient].map((client) =>
            client.status === 'wait' ? client.connect() : undefined,
          ),
        );
      }
      await loadScripts(this.client);
      await this.run('index-nodes');
    } catch (error) {
      if (this.ownsClient) {
        this.client.disconnect();
        this.telemetryClient.disconnect();
      }
      throw toStoreError(error);
    }
  }

  async registerNode(registration: NodeRegistration, now: number) {
    const [id, ...fields] = this.registrationArguments(registration);
    const reply = (await this.run('register-node', id, now, ...fields)) as [number, unknown[]];
    return { node: this.nodeView(reply[1]), created: reply[0] === 1 };
  }

  async registerNodes(registrations: readonly NodeRegistration[], now: number) {
    if (registrations.length === 0) return [];
    const reply = (await this.run(
      'register-nodes',
      now,
      ...registrations.flatMap((registration) => this.registrationArguments(registration)),
    )) as ['registered', ...Array<[number, unknown[]]>] | ['refused', string, string, string];
    if (reply[0] === 'refused') throw refusal(reply);
    return (reply.slice(1) as Array<[number, unknown[]]>).map(([created, dump]) => ({
      node: this.nodeView(dump),
      created: created === 1,
    }));
  }

  /**
   * One registration as the scripts take it (register-node.lua): id, identity, registration JSON,
   * labels JSON, region, system encoder session limit, GPUs JSON, unknown-model message.
   */
  private registrationArguments(registration: NodeRegistration): [string, ...Array<string | number>] {
    const gpuSet = registration.gpus.map((entry) => `${entry.model}x${entry.count}`).join(',');
    const identity = JSON.stringify([registration.host, registration.port, registration.protocol, gpuSet]);
    let gpus = '';
    let systemLimit: number | '' = '';
    let unknownModel = '';
    try {
      const models = registration.gpus.flatMap((entry) => {
        const model = this.catalog.model(entry.model);
        return Array.from({ length: entry.count }, () => model);
      });
      gpus = JSON.stringify(
        models.map((model) => ({
          model: model.name,
          hostable: canHostStreams(model) ? '1' : '0',
          encoderLimit: model.encoderSessionLimit ?? '',
          encoderScope: model.encoderSessionScope,
          throttleTemperature: model.throttleTemperatureCelsius,
          memoryTotal: model.vramMiB,
          reserveFloor: reserveFloor(this.options.vramReserveMiB ?? {}, model.name),
        })),
      );
      const systemLimits = models
        .filter((model) => model.encoderSessionScope === 'system' && model.encoderSessionLimit !== null)
        .map((model) => model.encoderSessionLimit as number);
      if (systemLimits.length > 0) systemLimit = Math.min(...systemLimits);
    } catch (error) {
      // Checked in the script, after the replay check, as the embedded store does.
      if (!isVcaError(error) || error.code !== 'VCA_ERR_UNKNOWN_GPU_MODEL') throw error;
      unknownModel = error.message;
    }
    const labels = registration.labels ?? {};
    return [
      registration.id,
      identity,
      JSON.stringify(registration),
      JSON.stringify(labels),
      labels.region ?? '',
      systemLimit,
      gpus,
      unknownModel,
    ];
  }

  async getNode(id: string) {
    const dumps = (await this.run('read-nodes', 'one', id)) as unknown[][];
    return dumps.length > 0 ? this.nodeView(dumps[0]!) : undefined;
  }

  /**
   * The fleet in registration order, read `listNodesPage` nodes per script (read-nodes.lua): each page is
   * consistent, the list as a whole is not one snapshot (a node that changes during the read shows its
   * state when its page was read; one registered meanwhile may come last, one removed may be missing).
   */
  async listNodes() {
    const nodes: NodeView[] = [];
    for (let after = '0'; ; ) {
      const [last, dumps] = (await this.run('read-nodes', 'page', after, listNodesPage)) as [
        string,
        unknown[][],
      ];
      for (const dump of dumps) nodes.push(this.nodeView(dump));
      if (last === '') return nodes;
      after = last;
    }
  }

  async drainingNodes() {
    const dumps = (await this.run('read-nodes', 'state', 'draining')) as unknown[][];
    return dumps.map((dump) => this.nodeView(dump));
  }

  async setNodeState(id: string, to: NodeState, now: number, drainDeadline?: number) {
    const dump = await this.run('set-node-state', id, to, now, drainDeadline ?? '');
    return this.nodeView(dump as unknown[]);
  }

  async drainNodes(
    ids: readonly string[],
    now: number,
    drainDeadline: number,
    options: DrainNodesOptions = {},
  ) {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return [];
    const reply = (await this.run(
      'drain-nodes',
      now,
      drainDeadline,
      options.onlyFrom?.join(',') ?? '',
      ...unique,
    )) as ['draining', ...unknown[][]] | ['refused', string, string, string];
    if (reply[0] === 'refused') throw refusal(reply);
    return (reply.slice(1) as unknown[][]).map((dump) => this.nodeView(dump));
  }

  async recordTelemetry(nodeId: string, report: TelemetryReport, now: number) {
    const dump = await this.runTelemetry(...this.telemetryArguments(nodeId, report, now, 'node'));
    return this.nodeView(dump as unknown[]);
  }

  async reportTelemetry(
    nodeId: string,
    report: TelemetryReport,
    now: number,
    options: ReportTelemetryOptions = {},
  ): Promise<TelemetryOutcome> {
    const mode = options.sessions === true ? 'sessions' : 'brief';
    const reply = (await this.runTelemetry(...this.telemetryArguments(nodeId, report, now, mode))) as [
      string,
      string,
      string,
      unknown[] | 0,
      number,
      ...string[][],
    ];
    const movedNode = reply[3] === 0 ? null : this.nodeView(reply[3]);
    const sessions = options.sessions === true ? (reply.slice(5) as string[][]).map(parseSession) : null;
    return {
      id: nodeId,
      state: reply[0] as NodeState,
      stateChangedAt: Number(reply[1]),
      gpus: movedNode ? movedNode.gpus.map((gpu) => telemetryGpuOf(gpu, gpu.model)) : briefGpus(reply[2]),
      movedNode,
      sessions,
      queueWaiting: reply[4] > 0,
    };
  }

  /** record-telemetry.lua's arguments after the settings: node, times, answer mode, samples. */
  private telemetryArguments(
    nodeId: string,
    report: TelemetryReport,
    now: number,
    mode: 'node' | 'brief' | 'sessions',
  ): Array<string | number> {
    // The conversions of GpuSlot.applyTelemetry: percentages to ppm, MiB rounded, unknown stays unknown.
    const ppm = (percent: number | null | undefined) => {
      const value = finiteOrEmpty(percent);
      return value === '' ? '' : percentToShare(value);
    };
    const sampledAt = sampleReference(report.ts, now, this.options.maxClockSkewMs ?? 2000);
    const coveredUntil = sampledAt - (this.options.settleMs ?? 0);
    const args: Array<string | number> = [nodeId, now, sampledAt, coveredUntil, mode];
    for (const sample of report.gpus) {
      const memoryUsed = finiteOrEmpty(sample.memoryUsed);
      const encoderSessions = finiteOrEmpty(sample.encoderSessions);
      const memoryTotal = finiteOrEmpty(sample.memoryTotal);
      args.push(
        typeof sample.index === 'number' && Number.isFinite(sample.index) ? sample.index : -1,
        ppm(sample.utilizationGpu),
        ppm(sample.utilizationEncoder),
        memoryUsed === '' ? '' : Math.max(0, Math.round(memoryUsed)),
        encoderSessions === '' ? '' : Math.max(0, encoderSessions),
        memoryTotal !== '' && memoryTotal > 0 ? memoryTotal : '',
        finiteOrEmpty(sample.temperatureGpu),
        sample.throttleActive === true ? '1' : '0',
        sample.uuid ? sample.uuid : '',
        sample.name ? sample.name : '',
      );
    }
    return args;
  }

  async sweepStale(now: number) {
    await this.run('sweep-stale', now);
  }

  async createSession(spec: SessionSpec, options: CreateSessionOptions): Promise<CreateSessionOutcome> {
    const session = newSessionRecord(spec, options.now, options.leaseExpiresAt);
    const reply = (await this.run(
      'create-session',
      spec.id,
      // The owner travels in its own hash field (read by the scripts), not in the spec JSON.
      JSON.stringify({ ...spec, owner: undefined, createdAt: options.now }),
      pickCosts(spec.costs, this.catalog, this.pickCostsCache),
      typeof spec.region === 'string' ? `:${spec.region}` : '',
      labelsArgument(spec.labels),
      spec.priority,
      spec.transport,
      options.now,
      options.strategy,
      options.waitMode,
      options.maxQueueLength,
      options.queueDeadline,
      options.leaseExpiresAt,
      spec.owner ?? '',
      options.maxOwnerSessions ?? '',
      latenciesArgument(spec.latencies),
    )) as [string, string | number, string?, string?];
    // The script answers only what it changed: the record is the one sent, with those changes.
    if (reply[0] === 'assigned') {
      const model = reply[3]!;
      const cost = spec.costs[model]!;
      session.state = 'assigned';
      session.assignedAt = options.now;
      session.placement = {
        nodeId: reply[1] as string,
        gpuIndex: Number(reply[2]),
        model,
        cost: {
          gpu: cost.gpu,
          encoder: cost.encoder,
          vramMiB: cost.vramMiB,
          encoderSessions: cost.encoderSessions,
        },
      };
      return { kind: 'assigned', session };
    }
    if (reply[0] === 'queued') {
      session.queuedAt = options.now;
      session.queueDeadline = options.queueDeadline;
      return { kind: 'queued', session, position: reply[1] as number };
    }
    return { kind: 'refused', reason: reply[1] as 'no-capacity' | 'queue-full' | 'owner-limit' };
  }

  async placeQueued(
    now: number,
    strategy: PlacementStrategy,
    leaseMs: Readonly<Record<SessionTransport, number>>,
  ) {
    const placed = (await this.run(
      'place-queued',
      now,
      strategy,
      leaseMs.rest,
      leaseMs.websocket,
    )) as string[][];
    return placed.map(parseSession);
  }

  async migrateSession(
    id: string,
    now: number,
    strategy: PlacementStrategy,
    leaseExpiresAt: number,
    queueDeadline: number,
  ): Promise<MigrateOutcome | undefined> {
    const reply = (await this.run('migrate-session', id, now, strategy, leaseExpiresAt, queueDeadline)) as
      | [string[], [string, string, string, string], unknown[] | null]
      | null;
    if (!reply) return undefined;
    const [nodeId, gpuIndex, model, cost] = reply[1];
    return {
      session: parseSession(reply[0]),
      from: { nodeId, gpuIndex: Number(gpuIndex), model, cost: parseCost(cost) },
      drainedNode: reply[2] ? this.nodeView(reply[2]) : null,
    };
  }

  async endSession(id: string, reason: EndReason, now: number): Promise<SessionEnd | undefined> {
    const reply = (await this.run('end-session', id, reason, now)) as
      | [string[], unknown[] | null, number]
      | null;
    return reply ? this.sessionEnd(reply) : undefined;
  }

  async renewLeases(ids: readonly string[], leaseExpiresAt: number) {
    if (ids.length === 0) return 0;
    return (await this.run('renew-leases', leaseExpiresAt, ...ids)) as number;
  }

  async expireSessions(now: number) {
    const ended = (await this.run('expire-sessions', now)) as Array<[string[], unknown[] | null, number]>;
    return ended.map((reply) => this.sessionEnd(reply));
  }

  async getSession(id: string) {
    const fields = await this.call(() => this.client.hmget(this.keys.session(id), ...sessionReplyFields));
    return fields[1] === null ? undefined : parseSession(fields);
  }

  async sessionsOnNode(nodeId: string) {
    const records = (await this.run('sessions-on-node', nodeId)) as string[][];
    return records.map(parseSession);
  }

  async queuePositions() {
    const ids = (await this.run('queue-positions')) as string[];
    return new Map(ids.map((id, index) => [id, index + 1]));
  }

  async mergeCostEvidence(increments: ReadonlyMap<string, number>) {
    const args: Array<string | number> = [];
    // '%.17g' text, as the scripts write numbers: Lua reads back the same double.
    for (const [key, value] of increments) if (Number.isFinite(value)) args.push(key, value.toPrecision(17));
    const flat = (await this.run('merge-cost-evidence', ...args)) as string[];
    const sums = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) sums.set(flat[i]!, Number(flat[i + 1]));
    return sums;
  }

  async resetCostEvidence(game: string) {
    return Number(await this.run('reset-cost-evidence', game));
  }

  async removeNode(id: string, now: number) {
    const dump = (await this.run('remove-node', id, now)) as unknown[] | null;
    if (!dump) return undefined;
    return { ...this.nodeView(dump), state: 'removed' as const, stateChangedAt: now };
  }

  async rememberWebhook(key: string, result: unknown, ttlMs: number, now: number): Promise<WebhookMemory> {
    const reply = (await this.run('remember-webhook', key, JSON.stringify(result) ?? '', ttlMs, now)) as [
      number,
      string?,
    ];
    if (reply[0] === 1) return { first: true, result };
    return { first: false, result: reply[1] ? JSON.parse(reply[1]) : undefined };
  }

  async settleWebhook(key: string, result: unknown, ttlMs: number, now: number): Promise<void> {
    const value = `${now + ttlMs}:${JSON.stringify(result) ?? ''}`;
    await this.call(() =>
      this.client.set(this.keys.webhook(key), value, 'PX', Math.max(1, Math.ceil(ttlMs))),
    );
  }

  async forgetWebhook(key: string): Promise<void> {
    await this.call(() => this.client.del(this.keys.webhook(key)));
  }

  async claimOutbox(now: number, leaseMs: number, limit: number): Promise<OutboxEntry[]> {
    const claimed = (await this.run('claim-outbox', now, leaseMs, limit)) as Array<
      [string, string[], string]
    >;
    return claimed.map(([id, flat, dueAt]) => {
      const entry = hashOf<'kind' | 'node' | 'createdAt' | 'attempts' | 'lastError'>(flat);
      const registration = JSON.parse(entry.node!) as NodeRegistration;
      return {
        id,
        kind: entry.kind as OutboxEntry['kind'],
        node: { id: registration.id, host: registration.host, group: registration.group ?? null },
        createdAt: Number(entry.createdAt),
        dueAt: Number(dueAt),
        attempts: Number(entry.attempts),
        lastError: entry.lastError ? entry.lastError : null,
      };
    });
  }

  async completeOutbox(id: string): Promise<boolean> {
    return (await this.run('complete-outbox', id)) === 1;
  }

  async retryOutbox(id: string, attempts: number, dueAt: number, detail: string): Promise<boolean> {
    return (await this.run('retry-outbox', id, attempts, dueAt, detail)) === 1;
  }

  async outboxLength(): Promise<number> {
    return this.call(() => this.client.zcard(this.keys.outbox));
  }

  async audit(): Promise<AuditReport> {
    const reply = (await this.run('audit')) as [
      Array<[string, string, string, string, string, string, Array<string | null>]>,
      number,
      number,
    ];
    const gpus: AuditReport['gpus'] = reply[0].map(([nodeId, index, cg, ce, cv, cs, costs]) => {
      const sum = zeroLoad();
      for (const text of costs) {
        if (!text) continue;
        const cost = parseCost(text);
        sum.gpu += cost.gpu;
        sum.encoder += cost.encoder;
        sum.vramMiB += cost.vramMiB;
        sum.encoderSessions += cost.encoderSessions;
      }
      return {
        nodeId,
        index: Number(index),
        committed: { gpu: Number(cg), encoder: Number(ce), vramMiB: Number(cv), encoderSessions: Number(cs) },
        sumOfSessions: sum,
        sessions: costs.length,
      };
    });
    return { gpus, liveSessions: reply[1], queuedSessions: reply[2] };
  }

  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new VcaError('VCA_ERR_STORE_UNAVAILABLE', 'Redis did not answer PING in time')),
        Math.min(this.commandTimeoutMs, pingTimeoutMs),
      );
    });
    try {
      // Both connections: a store whose telemetry connection is down is not healthy either.
      const clients = new Set([this.client, this.telemetryClient]);
      const pings = [...clients].map((client) => this.call(() => client.ping()));
      await Promise.race([Promise.all(pings), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Quits the client the store created; a client it was given stays open (its owner closes it). */
  async close(): Promise<void> {
    if (!this.ownsClient) return;
    await Promise.all(
      [this.client, this.telemetryClient].map(async (client) => {
        if (client.status === 'end') return;
        await client.quit().catch(() => client.disconnect());
      }),
    );
  }

  private async call<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw toStoreError(error);
    }
  }

  private run(name: ScriptName, ...args: Array<string | number>): Promise<unknown> {
    const script = this.scripts.get(name)!;
    this.coalesceWrites(this.client);
    return this.call(() => script(...this.scriptHead, ...args));
  }

  /** record-telemetry, over the telemetry connection. */
  private runTelemetry(...args: Array<string | number>): Promise<unknown> {
    const script = this.telemetryScripts.get('record-telemetry')!;
    this.coalesceWrites(this.telemetryClient);
    return this.call(() => script(...this.scriptHead, ...args));
  }

  /**
   * Lets every command issued in this event-loop turn leave in one write: the client's socket is
   * corked on the first and uncorked once the turn's I/O callbacks have run (setImmediate). Under load
   * the requests uWS delivers in one turn then cost one writev instead of one write each, on the
   * gateway and on Redis, which reads them in one go and answers them in one write. A client without
   * a socket of its own (ioredis Cluster) is left as it is.
   */
  private coalesceWrites(client: RedisClient): void {
    if (this.corked.has(client)) return;
    const stream = (client as unknown as { stream?: Partial<Writable> }).stream;
    if (typeof stream?.cork !== 'function' || typeof stream.uncork !== 'function') return;
    this.corked.add(client);
    stream.cork();
    setImmediate(() => {
      this.corked.delete(client);
      // A socket replaced by a reconnection in between is uncorked all the same (a no-op once destroyed).
      stream.uncork!();
    });
  }

  /** `reply[2]`, the queue length, comes with end-session only; expiry (a tick) runs a queue pass anyway. */
  private sessionEnd(reply: [string[], unknown[] | null, number?]): SessionEnd {
    return {
      session: parseSession(reply[0]),
      drainedNode: reply[1] ? this.nodeView(reply[1]) : null,
      queueWaiting: reply[2] === undefined || reply[2] > 0,
    };
  }

  /** A node dump of the scripts ({node hash, gpu hash, session count, ...}) as the embedded NodeView. */
  private nodeView(dump: unknown[]): NodeView {
    const node = hashOf<NodeHashField>(dump[0]);
    const registration = JSON.parse(node.registration!) as NodeRegistration;
    const gpus: GpuView[] = [];
    let sessions = 0;
    for (let i = 1; i + 1 < dump.length; i += 2) {
      const view = this.gpuView(hashOf<GpuHashField>(dump[i]), Number(dump[i + 1]));
      sessions += view.sessions;
      gpus.push(view);
    }
    const view: NodeView = {
      id: node.id!,
      host: registration.host,
      port: registration.port,
      protocol: registration.protocol,
      group: registration.group ?? null,
      labels: JSON.parse(node.labels!) as Record<string, string>,
      state: node.state as NodeState,
      stateChangedAt: Number(node.stateChangedAt),
      registeredAt: Number(node.registeredAt),
      drainDeadline: nullableNumber(node.drainDeadline),
      sessions,
      encoderSessionLimit: nullableNumber(node.systemEncoderLimit),
      gpus,
    };
    // Kept inside the registration JSON of the node hash, as written by register-node(s).lua.
    if (registration.orchestrator !== undefined) view.orchestrator = registration.orchestrator;
    return view;
  }

  private gpuView(gpu: Partial<Record<GpuHashField, string>>, sessions: number): GpuView {
    const committed: LoadVector = {
      gpu: Number(gpu.cg),
      encoder: Number(gpu.ce),
      vramMiB: Number(gpu.cv),
      encoderSessions: Number(gpu.cs),
    };
    const measured = {
      gpu: nullableNumber(gpu.mg),
      encoder: nullableNumber(gpu.me),
      vramMiB: nullableNumber(gpu.mv),
      encoderSessions: nullableNumber(gpu.ms),
    };
    // Absent on a GPU registered before pending load and the reserve existed: 0.
    const pending: LoadVector = {
      gpu: Number(gpu.pg ?? 0),
      encoder: Number(gpu.pe ?? 0),
      vramMiB: Number(gpu.pv ?? 0),
      encoderSessions: Number(gpu.ps ?? 0),
    };
    const reservedVramMiB = Number(gpu.rv || 0);
    const memoryTotalMiB = Number(gpu.memoryTotal);
    const encoderLimit = nullableNumber(gpu.encoderLimit);
    return {
      index: Number(gpu.index),
      model: gpu.model!,
      uuid: gpu.uuid ? gpu.uuid : null,
      name: gpu.name ? gpu.name : null,
      eligible: gpu.eligible === '1',
      stale: gpu.stale === '1',
      telemetryAt: nullableNumber(gpu.telemetryAt),
      temperatureCelsius: nullableNumber(gpu.temperature),
      throttleActive: gpu.throttle === '1',
      memoryTotalMiB,
      committed,
      measured,
      pending,
      reservedVramMiB,
      sampledAt: nullableNumber(gpu.sampledAt),
      effective: {
        gpu: effectiveOn(committed.gpu, measured.gpu, pending.gpu),
        encoder: effectiveOn(committed.encoder, measured.encoder, pending.encoder),
        vramMiB: effectiveOn(committed.vramMiB + reservedVramMiB, measured.vramMiB, pending.vramMiB),
        encoderSessions: effectiveOn(
          committed.encoderSessions,
          measured.encoderSessions,
          pending.encoderSessions,
        ),
      },
      capacity: {
        gpu: this.gpuCapacity,
        encoder: this.encoderCapacity,
        vramMiB: Math.floor(this.options.headroom.vram * memoryTotalMiB),
        encoderSessions: gpu.encoderScope === 'gpu' ? (encoderLimit ?? Infinity) : Infinity,
      },
      sessions,
    };
  }

  private watchConnection(client: RedisClient, logger: Logger | undefined, name: string): void {
    let lost = false;
    // Without a listener ioredis prints every failed reconnect; callers see VCA_ERR_STORE_UNAVAILABLE.
    client.on('error', (error: Error) => {
      if (!lost) logger?.warn({ err: error }, `${name}: connection error`);
      lost = true;
    });
    client.on('ready', () => {
      if (lost) logger?.info(`${name}: connection restored`);
      lost = false;
    });
  }
}

/** A connection to make, as opposed to a client the caller made (whichever copy of ioredis made it). */
function isConnection(redis: RedisClient | RedisConnection): redis is RedisConnection {
  return typeof redis === 'string' || 'sentinels' in redis || 'clusterNodes' in redis;
}

/**
 * A client that fails fast: no offline queue and one retry, so calls fail at once while Redis is down
 * (VCA_ERR_STORE_UNAVAILABLE) and ioredis reconnects by itself. On Cluster, ioredis builds each node's
 * client itself (with an offline queue and no retry strategy of ours): there a command to a failed
 * master follows the Cluster's redirections, bounded to 3 tries 50 ms apart, then fails the same way.
 */
function createClient(connection: RedisConnection, commandTimeoutMs: number): RedisClient {
  const timeouts = {
    maxRetriesPerRequest: 1,
    connectTimeout: Math.min(commandTimeoutMs, pingTimeoutMs),
    commandTimeout: commandTimeoutMs,
  };
  const failFast = {
    ...timeouts,
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: (attempt: number) => Math.min(50 * attempt, 500),
  };
  if (typeof connection === 'string') return new Redis(connection, failFast);
  if ('sentinels' in connection) {
    return new Redis({
      ...failFast,
      sentinels: connection.sentinels,
      name: connection.masterName,
      ...(connection.password ? { password: connection.password } : {}),
      ...(connection.sentinelPassword ? { sentinelPassword: connection.sentinelPassword } : {}),
      sentinelRetryStrategy: (attempt: number) => Math.min(50 * attempt, 500),
    });
  }
  return new Cluster(connection.clusterNodes, {
    lazyConnect: true,
    enableOfflineQueue: false,
    clusterRetryStrategy: (attempt: number) => Math.min(50 * attempt, 500),
    maxRedirections: 3,
    retryDelayOnFailover: 50,
    retryDelayOnClusterDown: 50,
    retryDelayOnTryAgain: 50,
    redisOptions: { ...timeouts, ...(connection.password ? { password: connection.password } : {}) },
  });
}

/** Builds a Redis store, connects it and loads its scripts; rejects with VCA_ERR_STORE_UNAVAILABLE. */
export async function createRedisStore(options: RedisStoreOptions): Promise<RedisStore> {
  const store = new RedisStore(options);
  await store.connect();
  return store;
}
