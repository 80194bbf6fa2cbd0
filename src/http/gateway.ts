/**
 * The gateway: the VCA domain behind the uWebSockets.js server. Wires the declared routes and the play
 * socket through the route pipeline (which checks access and bodies), metrics, outbound callbacks, the
 * periodic work (lease expiry, drain deadlines, WebSocket lease renewal, the autoscaler) and a graceful
 * shutdown.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { VcaConfig } from '../config/schema.js';
import type { Catalog } from '../cost/catalog.js';
import { isVcaError } from '../errors.js';
import { RegionDirectory } from '../fleet/region-directory.js';
import { CallbackOutbox } from '../hooks/callback-outbox.js';
import { HookService } from '../hooks/hook-service.js';
import { OutboundCalls } from '../hooks/outbound-calls.js';
import { collectRuntimeMetrics, type RuntimeMetrics } from '../metrics/runtime-metrics.js';
import { VcaMetrics } from '../metrics/vca-metrics.js';
import { KeystoneClient, keystoneOptionsFromConfig } from '../openstack/keystone.js';
import { AutoscalerRunner } from '../scaling/autoscaler-runner.js';
import { type EventRelay, isRelayed } from '../sessions/events.js';
import type { StateStore } from '../state/state-store.js';
import { createVca, type Vca } from '../vca.js';
import { AdminServer } from './admin-server.js';
import { AlarmCredentials } from './alarm-credentials.js';
import type { ApiRoute } from './api-routes.js';
import { SessionViews } from './assignment-view.js';
import { ConsoleFeed } from './console-feed.js';
import { ConsoleAssets, consolePath } from './console-static.js';
import { Credentials } from './credentials.js';
import { openApiRoute } from './openapi.js';
import { latencyCapAt, PlacementLatency } from './placement-latency.js';
import { PlaySockets } from './play-socket.js';
import { RoutePipeline, ratesByCredential } from './route-pipeline.js';
import { costRoutes } from './routes/cost-routes.js';
import { gamerRoutes } from './routes/gamer-routes.js';
import { hookRoutes } from './routes/hook-routes.js';
import { nodeRoutes } from './routes/node-routes.js';
import { operatorRoutes } from './routes/operator-routes.js';
import { HttpServer } from './uws-server.js';

export interface GatewayOptions {
  config: Readonly<VcaConfig>;
  catalog: Catalog;
  logger: Logger;
  clock?: Clock;
  store?: StateStore;
  /** Carries session events to and from other instances sharing the store (Redis mode). */
  relay?: EventRelay;
  version?: string;
  /** Where the built operator console lies (default: `dist/console/` of the package). */
  consoleDirectory?: string;
  /** The console feed's pace: poll and history sample intervals, ms (defaults 300 and 5000). */
  consoleFeed?: { pollMs?: number; historySampleMs?: number };
}

export class Gateway {
  readonly vca: Vca;
  readonly metrics: VcaMetrics;
  readonly credentials: Credentials;
  /** The Keystone client of `openstack.keystone`, when one is configured. */
  readonly keystone: KeystoneClient | undefined;
  readonly server: HttpServer;
  /** The admin listener on node:http (`server.adminPort`), undefined when it is off. */
  readonly admin: AdminServer | undefined;
  readonly play: PlaySockets;
  readonly autoscaler: AutoscalerRunner;
  readonly routes: ApiRoute[];
  /** The operator console's live feed (`/v1/console/feed`) and its static files (`/console`). */
  readonly console: ConsoleFeed;
  readonly consoleAssets: ConsoleAssets;
  private readonly outbound: OutboundCalls;
  private readonly callbackOutbox: CallbackOutbox;
  private readonly logger: Logger;
  private readonly relay: EventRelay | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Process and runtime series; started with the listeners, stopped with them (no monitor outlives the gateway). */
  private runtimeMetrics: RuntimeMetrics | undefined;
  private stopping = false;
  private listeningPort = 0;

  constructor(options: GatewayOptions) {
    const { config, logger } = options;
    this.logger = logger;
    this.vca = createVca({
      config,
      catalog: options.catalog,
      clock: options.clock,
      store: options.store,
      onBackgroundError: (error) => logger.error({ err: error }, 'background task failed'),
      logger,
    });
    const { store, sessions, fleet, events, catalog, clock } = this.vca;
    this.metrics = new VcaMetrics({
      store,
      perGpuSeriesLimit: config.metrics.perGpuSeriesLimit,
      costs: { entries: () => this.vca.costs.view() },
    });
    this.credentials = new Credentials(config.auth);
    this.console = new ConsoleFeed({
      store,
      credentials: this.credentials,
      catalog,
      autoscalerConfig: config.autoscaler,
      autoscalerView: () => this.autoscaler.view(),
      priorityClasses: config.queue.priorityClasses,
      now: () => clock.now(),
      logger,
      historyWithoutViewers: config.console.historyWithoutViewers,
      historySampleMs: config.console.historySampleSeconds * 1000,
      ...options.consoleFeed,
    });
    this.consoleAssets = new ConsoleAssets(options.consoleDirectory);
    const latencyRules = {
      latencyPolicies: config.placement.latencyPolicies,
      allowUnreportedRegions: config.placement.allowUnreportedRegions,
    };
    const regions = new RegionDirectory({ store, now: () => clock.now() });
    const views = new SessionViews({
      store,
      masterSecret: config.auth.masterSecret,
      ticketTtlSeconds: config.tickets.ttlSeconds,
      now: () => clock.now(),
      latencyCapAt: latencyCapAt(latencyRules),
    });
    this.outbound = new OutboundCalls({
      attempts: config.hooks.callbackAttempts,
      timeoutMs: config.hooks.callbackTimeoutSeconds * 1000,
      backoffMs: config.hooks.callbackBackoffSeconds * 1000,
      queueLimit: config.hooks.callbackQueueLimit,
      onResult: (call, outcome, detail) => {
        this.metrics.outboundCalls.inc({ kind: call.kind, outcome });
        const log = outcome === 'delivered' ? logger.info.bind(logger) : logger.warn.bind(logger);
        log({ kind: call.kind, url: call.url, outcome, detail }, 'outbound call');
        this.console.record(
          outcome === 'delivered' ? 'signal' : 'error',
          `${call.kind} signal ${outcome}${detail ? `: ${detail}` : ''}`,
        );
      },
    });
    this.callbackOutbox = new CallbackOutbox({
      store,
      url: config.hooks.drainedCallbackUrl,
      clock,
      timeoutMs: config.hooks.callbackTimeoutSeconds * 1000,
      backoffMs: config.hooks.callbackBackoffSeconds * 1000,
      maxDelayMs: config.hooks.drainedCallbackMaxDelaySeconds * 1000,
      attempts: config.hooks.drainedCallbackAttempts,
      onResult: (entry, outcome, detail) => {
        if (outcome !== 'skipped') this.metrics.outboundCalls.inc({ kind: entry.kind, outcome });
        const level = outcome === 'failed' ? 'error' : outcome === 'retried' ? 'warn' : 'info';
        logger[level](
          { kind: entry.kind, id: entry.id, node: entry.node.id, outcome, detail },
          'callback outbox',
        );
        if (outcome !== 'skipped')
          this.console.record(
            outcome === 'failed' ? 'error' : 'callback',
            `${entry.kind} callback for ${entry.node.id} ${outcome}${detail ? `: ${detail}` : ''}`,
            { node: entry.node.id },
          );
      },
    });
    this.autoscaler = new AutoscalerRunner({
      store,
      fleet,
      catalog,
      config: config.autoscaler,
      clock,
      signal: (signal) => {
        logger.info({ signal }, 'autoscaler signal');
        this.console.record('signal', `autoscaler ${signal.event} x${signal.count}: ${signal.reason}`);
        const url = signal.event === 'scale-up' ? config.hooks.scaleUpUrl : config.hooks.scaleDownUrl;
        this.outbound.send({ kind: signal.event, url, body: signal });
      },
    });
    this.play = new PlaySockets({
      sessions,
      events,
      store,
      views,
      credentials: this.credentials,
      metrics: this.metrics,
      logger,
      regions,
    });
    const placementLatency = new PlacementLatency({
      rules: latencyRules,
      regions,
      metrics: this.metrics,
      play: this.play,
      now: () => clock.now(),
      onError: (error) => logger.error({ err: error }, 'placement latency metric failed'),
    });
    events.subscribe((event) => {
      this.metrics.observe(event);
      // Before the play sockets: a relaxed cap is told before (and carried by) a new position.
      placementLatency.handleEvent(event, true);
      this.play.handleEvent(event);
      views.handleEvent(event);
      this.console.handleEvent(event);
      if (event.type === 'node-drained') {
        logger.info({ node: event.node.id }, 'node drained');
        // Its callback is already in the store's outbox (written with the drain): callbackOutbox sends it.
        this.autoscaler.nodeDrained(event.node);
      } else if (event.type === 'node-state') {
        logger.info({ node: event.node.id, state: event.node.state }, 'node state');
      }
    });

    // Redis mode: what this instance decides reaches the sockets held by the others, and back. Remote
    // events only feed the sockets and the node endpoint cache here (metrics and scale signals belong to
    // the instance that decided; drain callbacks to the store's outbox).
    this.relay = options.relay;
    if (this.relay) {
      const relay = this.relay;
      events.subscribe((event) => {
        if (isRelayed(event)) relay.publish(event);
      });
      relay.onRemote((event) => {
        if (!isRelayed(event)) return;
        placementLatency.handleEvent(event, false);
        this.play.handleEvent(event);
        views.handleEvent(event);
        this.console.handleEvent(event);
      });
    }

    this.server = new HttpServer({
      host: config.server.host,
      port: config.server.port,
      limits: {
        maxBodyBytes: config.server.maxBodyBytes,
        maxWsPayloadBytes: config.server.maxWsPayloadBytes,
        wsIdleTimeoutSeconds: config.server.wsIdleTimeoutSeconds,
        maxConnectionsPerAddress: config.server.maxConnectionsPerAddress,
        requestsPerSecondPerAddress: config.server.requestsPerSecondPerAddress,
        requestBurst: config.server.requestBurst,
        trustedProxies: config.server.trustedProxies,
        wsMaxBackpressureBytes: config.server.wsMaxBackpressureBytes,
        wsMessagesPerSecond: config.server.wsMessagesPerSecond,
        wsMessageBurst: config.server.wsMessageBurst,
      },
      logger,
      closeGraceMs: config.server.shutdownGraceSeconds * 1000,
      onWebSocketCut: (reason) => this.metrics.websocketClosed.inc({ reason }),
    });
    const hooks = new HookService({
      store,
      fleet,
      clock,
      idempotencyTtlMs: config.hooks.idempotencyTtlSeconds * 1000,
      alarmRepeatCooldownMs: config.hooks.aodh.repeatCooldownSeconds * 1000,
    });
    const keystoneOptions = keystoneOptionsFromConfig(config.openstack.keystone);
    this.keystone =
      keystoneOptions === null
        ? undefined
        : new KeystoneClient({ ...keystoneOptions, clock, logger: logger.child({ component: 'keystone' }) });
    const alarmCredentials = new AlarmCredentials({
      credentials: this.credentials,
      orchestratorSecret: config.auth.orchestratorSecret,
      policy: config.hooks.aodh,
      keystone: this.keystone,
      logger,
    });
    // Health, readiness, metrics and the operator API: served on the data plane and on the admin listener.
    const adminRoutes = operatorRoutes({
      fleet,
      store,
      sessions,
      catalog,
      metrics: this.metrics,
      autoscalerConfig: config.autoscaler,
      autoscalerView: () => this.autoscaler.view(),
      isReady: () => this.readiness(),
      publicMetrics: config.auth.publicMetrics,
    });
    this.routes = [
      ...gamerRoutes({ sessions, store, catalog, views, metrics: this.metrics, regions }),
      ...nodeRoutes({ fleet, sessions, store }),
      ...hookRoutes({
        hooks,
        credentials: this.credentials,
        alarmCredentials,
        views,
        metrics: this.metrics,
        onApplied: (event, applied) => {
          logger.info(
            {
              source: event.source,
              eventId: event.idempotencyKey,
              replayed: applied.replayed,
              action: event.action.kind,
            },
            event.summary,
          );
          this.console.record(
            'webhook',
            `${event.source} webhook${applied.replayed ? ' (replayed)' : ''}: ${event.summary}`,
          );
        },
      }),
      ...adminRoutes,
      ...costRoutes({ costs: this.vca.costs }),
    ];
    this.routes.push(openApiRoute(this.routes, options.version ?? '0.0.0'));
    const pipeline = new RoutePipeline({
      credentials: this.credentials,
      metrics: this.metrics,
      logger,
      now: () => clock.now(),
      alarmCredentials,
    });
    for (const route of this.routes) {
      this.server.route(route.method, route.path, pipeline.handler(route), {
        rateByCredential: ratesByCredential(route),
      });
    }
    this.server.websocket('/v1/play', pipeline.websocket('/v1/play', 'gamer', this.play.route()));
    // The console: public static files, and a feed whose first message must be an operator token.
    this.server.websocket('/v1/console/feed', this.console.route());
    for (const method of ['GET', 'HEAD'] as const) {
      this.server.route(method, consolePath, () => this.consoleAssets.index());
      this.server.route(method, `${consolePath}/`, () => this.consoleAssets.index());
      this.server.route(method, `${consolePath}/assets/:name`, (ctx) => this.consoleAssets.asset(ctx));
    }
    this.admin =
      config.server.adminPort < 0
        ? undefined
        : new AdminServer({
            host: config.server.adminHost || config.server.host,
            port: config.server.adminPort,
            limits: {
              maxHeaderBytes: config.server.adminMaxHeaderBytes,
              maxBodyBytes: config.server.adminMaxBodyBytes,
              maxConnections: config.server.adminMaxConnections,
              headersTimeoutMs: config.server.adminHeadersTimeoutSeconds * 1000,
              requestTimeoutMs: config.server.adminRequestTimeoutSeconds * 1000,
            },
            logger,
            closeGraceMs: config.server.shutdownGraceSeconds * 1000,
          });
    if (this.admin)
      for (const route of adminRoutes) this.admin.route(route.method, route.path, pipeline.handler(route));
  }

  get port(): number {
    return this.listeningPort;
  }

  /** The admin listener's bound port; undefined when `server.adminPort` is off. */
  get adminPort(): number | undefined {
    return this.admin?.port;
  }

  async start(): Promise<number> {
    const { config } = this.vca;
    this.runtimeMetrics ??= collectRuntimeMetrics(this.metrics.registry);
    this.listeningPort = await this.server.listen();
    await this.admin?.listen();
    this.console.start();
    const every = (ms: number, task: () => Promise<unknown>) => {
      let running = false;
      const timer = setInterval(() => {
        if (running || this.stopping) return;
        running = true;
        task()
          .catch((error) => this.logger.error({ err: error }, 'periodic task failed'))
          .finally(() => {
            running = false;
          });
      }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    const tickMs = Math.max(100, Math.min(1000, config.telemetry.reportIntervalSeconds * 500));
    every(tickMs, async () => {
      await this.vca.sessions.tick();
      await this.vca.fleet.tick();
    });
    // Apart from the tick above, so a slow orchestrator never holds up lease expiry or drains.
    every(tickMs, () => this.callbackOutbox.deliverDue());
    every(Math.max(250, (config.leases.resumeGraceSeconds * 1000) / 4), () =>
      this.vca.sessions.renewLeases(this.play.attachedSessionIds(), 'websocket'),
    );
    if (config.autoscaler.enabled)
      every(config.autoscaler.intervalSeconds * 1000, () => this.autoscaler.runOnce());
    // Learned costs: this instance's evidence into the store, everyone's back; a restart reads it at once.
    if (this.vca.costs.enabled) {
      this.vca.costs
        .flush()
        .catch((error) => this.logger.warn({ err: error }, 'learned costs: first read failed'));
      every(config.costs.learning.flushSeconds * 1000, () => this.vca.costs.flush());
    }
    // The Heat pre-delete hook flow (openstack.heat.stackId): drains paused members, then clears their hooks.
    const heatHooks = this.vca.heatHooks;
    if (heatHooks) every(config.openstack.heat.pollSeconds * 1000, () => heatHooks.pollOnce());
    this.logger.info(
      { port: this.listeningPort, adminPort: this.adminPort, store: this.vca.store.kind },
      'gateway listening',
    );
    return this.listeningPort;
  }

  /** Graceful stop: refuse new work, tell WebSocket clients, let in-flight requests finish, flush callbacks. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const timer of this.timers) clearInterval(timer);
    this.runtimeMetrics?.stop();
    this.console.stop();
    await Promise.all([this.server.close(), this.admin?.close()]);
    const graceMs = this.vca.config.server.shutdownGraceSeconds * 1000;
    await Promise.all([this.outbound.close(graceMs), this.callbackOutbox.close(graceMs)]);
    await this.relay?.close();
    // What this instance learned since its last flush goes to the store before it closes.
    if (this.vca.costs.enabled)
      await this.vca.costs
        .flush()
        .catch((error) => this.logger.warn({ err: error }, 'learned costs: last flush failed'));
    // Another instance takes the Heat hook flow over now, not only when this one's lease runs out.
    await this.vca.heatHooks
      ?.resign()
      .catch((error) => this.logger.warn({ err: error }, 'heat hook flow: giving up the lead failed'));
    await this.vca.store.close();
    this.logger.info('gateway stopped');
  }

  private async readiness(): Promise<{ ready: boolean; reason?: string }> {
    if (this.stopping) return { ready: false, reason: 'shutting down' };
    try {
      await this.vca.store.ping();
      return { ready: true };
    } catch (error) {
      return { ready: false, reason: isVcaError(error) ? error.message : 'store unreachable' };
    }
  }
}
