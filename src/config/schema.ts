/**
 * The configuration schema: every setting, its type, bounds and default. Validation and the README's
 * configuration table both follow it; a bad value stops start-up with the key's path.
 */
import { type Static, Type } from '@sinclair/typebox';

const Seconds = (defaultValue: number, minimum = 0, maximum = 86_400) =>
  Type.Number({ minimum, maximum, default: defaultValue });
const Share = (defaultValue: number) =>
  Type.Number({ exclusiveMinimum: 0, maximum: 1, default: defaultValue });
const Count = (defaultValue: number, minimum = 0, maximum = 1_000_000) =>
  Type.Integer({ minimum, maximum, default: defaultValue });
/** `host:port`, an IPv6 host in brackets (`[::1]:26379`). */
const HostPort = Type.String({ pattern: '^(?:\\[[0-9A-Fa-f:.]+\\]|[^\\s:\\[\\]]+):[0-9]{1,5}$' });

const ServerConfigSchema = Type.Object(
  {
    host: Type.String({ minLength: 1, default: '0.0.0.0' }),
    port: Type.Integer({ minimum: 0, maximum: 65_535, default: 8080 }),
    maxBodyBytes: Count(64 * 1024, 1024, 16 * 1024 * 1024),
    maxWsPayloadBytes: Count(16 * 1024, 256, 1024 * 1024),
    wsIdleTimeoutSeconds: Count(60, 8, 960),
    wsMaxBackpressureBytes: Count(256 * 1024, 1024, 64 * 1024 * 1024),
    /**
     * Messages per second one WebSocket may send, sustained, and at once (its burst); past that budget
     * it is closed with 1008. A /v1/play client sends a few messages per session (request, resume, end).
     */
    wsMessagesPerSecond: Count(20, 1, 100_000),
    wsMessageBurst: Count(50, 1, 100_000),
    maxConnectionsPerAddress: Count(256, 1),
    requestsPerSecondPerAddress: Count(500, 1),
    requestBurst: Count(1000, 1),
    /**
     * Proxies in front of the gateway (addresses or CIDR blocks, IPv4 or IPv6): only a peer in this list
     * may name the client, through a PROXY protocol v2 header or X-Forwarded-For (src/http/trusted-proxies.ts).
     * Empty (the default): the peer is always the client.
     */
    trustedProxies: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { default: [], maxItems: 256 }),
    shutdownGraceSeconds: Seconds(5, 0, 600),
    /**
     * The admin listener on Node's own HTTP server (`src/http/admin-server.ts`): /healthz, /readyz,
     * /metrics and the operator API, for load balancers and health checkers that speak HTTP/1.0 or
     * send what uWebSockets.js v20.30 cannot parse. -1 = off (the default); 0 = any free port.
     */
    adminPort: Type.Integer({ minimum: -1, maximum: 65_535, default: -1 }),
    /** Address the admin listener binds to; empty = the same as `host` (load balancers sit on other hosts). */
    adminHost: Type.String({ default: '' }),
    /** The admin listener's limits: request head (431 above it), body (413), open connections, timeouts. */
    adminMaxHeaderBytes: Count(16 * 1024, 1024, 1024 * 1024),
    adminMaxBodyBytes: Count(16 * 1024, 1024, 1024 * 1024),
    adminMaxConnections: Count(64, 1, 100_000),
    /** Time to receive a request head (clamped to the request timeout), then the whole request. */
    adminHeadersTimeoutSeconds: Seconds(10, 1, 600),
    adminRequestTimeoutSeconds: Seconds(30, 1, 3600),
  },
  { additionalProperties: false, default: {} },
);

const StoreConfigSchema = Type.Object(
  {
    kind: Type.Union([Type.Literal('embedded'), Type.Literal('redis')], { default: 'embedded' }),
    redis: Type.Object(
      {
        /** `single`: one server at `url`; `sentinel`: the master `sentinelMasterName` that `sentinels` watch; `cluster`: Redis Cluster from `clusterNodes`. */
        mode: Type.Union([Type.Literal('single'), Type.Literal('sentinel'), Type.Literal('cluster')], {
          default: 'single',
        }),
        url: Type.String({ default: 'redis://127.0.0.1:6379' }),
        sentinels: Type.Array(HostPort, { default: [] }),
        sentinelMasterName: Type.String({ default: '' }),
        clusterNodes: Type.Array(HostPort, { default: [] }),
        /** The data nodes' password for `sentinel` and `cluster` (a `single` server takes it in its URL). */
        password: Type.String({ default: '' }),
        /** The sentinels' own password (`sentinel`), when they require one. */
        sentinelPassword: Type.String({ default: '' }),
        keyPrefix: Type.String({ default: 'vca' }),
        cluster: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', default: 'default' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

const PlacementConfigSchema = Type.Object(
  {
    strategy: Type.Union([Type.Literal('packed'), Type.Literal('spread')], { default: 'packed' }),
    headroom: Type.Object(
      { gpu: Share(0.9), encoder: Share(0.9), vram: Share(0.95) },
      { additionalProperties: false, default: {} },
    ),
    temperatureMarginCelsius: Count(5, 0, 50),
    /** When true a node is placed on only after its first telemetry report (provisioning until then). */
    requireTelemetry: Type.Boolean({ default: true }),
    /**
     * Latency-aware placement (src/placement/latency-policy.ts), for requests that report latencies:
     * policy i caps the regions' round-trip time (latency <= maxLatencyMs) while the session is younger
     * than the sum of forSeconds of policies 0..i; after the last one any reported region is allowed.
     * [] is no cap. The default keeps a session within 50 ms (comfortable for fast games) for its first
     * 5 s and within 100 ms until 25 s: it waits briefly for a close GPU rather than taking a far one at
     * once, and never long next to the queue timeout.
     */
    latencyPolicies: Type.Array(
      Type.Object(
        {
          maxLatencyMs: Type.Number({ minimum: 0, maximum: 60_000 }),
          forSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 86_400 }),
        },
        { additionalProperties: false },
      ),
      {
        maxItems: 16,
        default: [
          { maxLatencyMs: 50, forSeconds: 5 },
          { maxLatencyMs: 100, forSeconds: 20 },
        ],
      },
    ),
    /** After the last latency policy, also regions the gamer reported no latency for (tried last). */
    allowUnreportedRegions: Type.Boolean({ default: false }),
    /**
     * Per GPU model (catalog name): the least VRAM, MiB, a GPU of it keeps for the driver and the
     * streaming stack, counted as committed. An idle GPU's measured VRAM use raises it (never lowers it
     * below this floor). Models not listed: 0, so the idle measurement alone.
     */
    vramReserveMiB: Type.Record(
      Type.String({ minLength: 1, maxLength: 64 }),
      Type.Number({ minimum: 0, maximum: 1_048_576 }),
      {
        default: {},
        maxProperties: 256,
      },
    ),
  },
  { additionalProperties: false, default: {} },
);

const TelemetryConfigSchema = Type.Object(
  {
    reportIntervalSeconds: Seconds(2, 0.1, 300),
    staleAfterIntervals: Type.Number({ minimum: 1, maximum: 100, default: 3 }),
    /**
     * A session placed on a GPU counts as pending (added to the measured load) until a sample taken
     * this long after its placement: the time a stream takes to show in nvidia-smi's utilization.
     */
    settleSeconds: Seconds(1, 0, 60),
    /**
     * A sample's own time (the report's `ts`) is trusted down to this long before the report arrived;
     * an older `ts` (a probe clock behind, a delayed report) counts as this old, a later one as arrival.
     */
    maxClockSkewSeconds: Seconds(2, 0, 600),
  },
  { additionalProperties: false, default: {} },
);

const QueueConfigSchema = Type.Object(
  {
    maxLength: Count(10_000, 0),
    timeoutSeconds: Seconds(300, 1),
    /** Priority classes, highest first. */
    priorityClasses: Type.Array(Type.String({ pattern: '^[a-z][a-z0-9-]{0,31}$' }), {
      minItems: 1,
      maxItems: 8,
      default: ['premium', 'standard'],
    }),
    defaultPriority: Type.String({ default: 'standard' }),
  },
  { additionalProperties: false, default: {} },
);

const LeaseConfigSchema = Type.Object(
  {
    /** REST sessions must heartbeat within this many seconds. */
    restSeconds: Seconds(30, 1, 3600),
    /** A WebSocket session whose socket drops is kept this long for a `resume`. */
    resumeGraceSeconds: Seconds(20, 2, 3600),
  },
  { additionalProperties: false, default: {} },
);

const DrainConfigSchema = Type.Object(
  {
    defaultDeadlineSeconds: Seconds(900, 0),
  },
  { additionalProperties: false, default: {} },
);

const AutoscalerConfigSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: false }),
    intervalSeconds: Seconds(15, 1, 3600),
    /** One reference slot = one session costing this share of the reference GPU (1080p60 of a mid title). */
    referenceSlotShare: Share(0.25),
    /** Free reference slots to keep ready for arrivals (Agones-style buffer). */
    bufferReferenceSlots: Count(8),
    /** Reference slots one new node brings, used to size scale-ups. */
    nodeReferenceSlots: Count(4, 1),
    minNodes: Count(0),
    maxNodes: Count(100),
    maxScaleUpStep: Count(10, 1),
    scaleUpCooldownSeconds: Seconds(120),
    scaleDownCooldownSeconds: Seconds(600),
  },
  { additionalProperties: false, default: {} },
);

const CatalogConfigSchema = Type.Object(
  {
    gamesFile: Type.String({ default: 'games.yaml' }),
    gpusFile: Type.String({ default: 'gpus.yaml' }),
  },
  { additionalProperties: false, default: {} },
);

const Token = Type.String({ minLength: 16, maxLength: 256 });

/** Signature algorithms a gamer identity token may use: public-key ones only (never `none` or HMAC). */
export const gamerJwtAlgorithms = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/**
 * Gamer identity tokens: JWTs the operator's platform signs for one gamer, verified here offline (no
 * network fetch) against `publicKeys` (PEM) or the keys of a local JWKS file, exactly one of the two.
 * Sessions asked for with one belong to its `sub`. See src/http/gamer-jwt.ts.
 */
const GamerJwtConfigSchema = Type.Object(
  {
    /** Required `iss`. */
    issuer: Type.String({ minLength: 1, maxLength: 1024 }),
    /** Required in `aud`. */
    audience: Type.String({ minLength: 1, maxLength: 1024 }),
    /** SPKI PEM public keys (`-----BEGIN PUBLIC KEY-----`); a token verifies with any of them. */
    publicKeys: Type.Array(Type.String({ minLength: 1, maxLength: 16_384 }), { default: [], maxItems: 32 }),
    /** A JWKS JSON file (`{"keys": [...]}`, public keys), read once at boot; a token's `kid` picks the key. */
    jwksFile: Type.String({ default: '', maxLength: 4096 }),
    algorithms: Type.Array(Type.Union(gamerJwtAlgorithms.map((name) => Type.Literal(name))), {
      minItems: 1,
      uniqueItems: true,
      default: ['RS256', 'ES256', 'EdDSA'],
    }),
    /** Leeway for `exp` and `nbf` against this gateway's clock. */
    clockToleranceSeconds: Seconds(30, 0, 300),
  },
  { additionalProperties: false },
);
export type GamerJwtConfig = Static<typeof GamerJwtConfigSchema>;

const AuthConfigSchema = Type.Object(
  {
    /** Bearer tokens of gamer front-ends (the service that logs gamers in). */
    gamerTokens: Type.Array(Token, { default: [], maxItems: 64 }),
    /** Bearer tokens of operators (admin API, /metrics unless public). */
    operatorTokens: Type.Array(Token, { default: [], maxItems: 64 }),
    /** Shared secret of the orchestrator: in X-VCA-Hook-Secret, ?secret=, or as the HMAC key of X-VCA-Signature. */
    orchestratorSecret: Type.String({ default: '', maxLength: 256 }),
    /** Master secret: per-node ticket keys and node tokens are derived from it (at least 32 bytes). */
    masterSecret: Type.String({ default: '', maxLength: 512 }),
    /** Accepted age of a signed webhook, seconds. */
    signatureToleranceSeconds: Seconds(300, 1, 3600),
    /** Serve /metrics without a token (for a Prometheus on a private network). */
    publicMetrics: Type.Boolean({ default: false }),
    /** Optional per-gamer identity tokens; without it gamer routes take the static gamer tokens only. */
    gamerJwt: Type.Optional(GamerJwtConfigSchema),
    /** Most live (queued or assigned) sessions one gamer (a gamer JWT's `sub`) may hold at once. */
    maxSessionsPerGamer: Count(1, 1, 1000),
  },
  { additionalProperties: false, default: {} },
);

const TicketConfigSchema = Type.Object(
  {
    /** How long a gamer has to present a ticket to its node. */
    ttlSeconds: Seconds(120, 5, 86_400),
  },
  { additionalProperties: false, default: {} },
);

const HooksConfigSchema = Type.Object(
  {
    /** How long a webhook delivery id is remembered for replay detection. */
    idempotencyTtlSeconds: Seconds(86_400, 60, 30 * 86_400),
    /**
     * POSTed `{event: 'node-drained', node}` with `Idempotency-Key` when a draining node is empty, from
     * the store's outbox by whichever instance is alive (retried with `callbackBackoffSeconds` and
     * `callbackTimeoutSeconds`, or after the answer's Retry-After).
     */
    drainedCallbackUrl: Type.String({ default: '' }),
    /** Attempts of one drain-complete callback before it is given up (logged, counted as failed). */
    drainedCallbackAttempts: Count(12, 1, 1000),
    /** Bound on the wait between attempts of a drain-complete callback, a Retry-After included. */
    drainedCallbackMaxDelaySeconds: Seconds(300, 1, 86_400),
    /** POSTed by the autoscaler (a Heat alarm_url takes an empty POST). */
    scaleUpUrl: Type.String({ default: '' }),
    scaleDownUrl: Type.String({ default: '' }),
    /** Attempts per autoscaler signal, with exponential backoff and jitter between them. */
    callbackAttempts: Count(6, 1, 50),
    callbackTimeoutSeconds: Seconds(5, 0.1, 120),
    callbackBackoffSeconds: Seconds(1, 0.01, 600),
    /** Autoscaler signals in flight at most; further ones are dropped (and counted) past this. */
    callbackQueueLimit: Count(1000, 1),
    /** The Aodh alarm hook (`/v1/hooks/aodh`). */
    aodh: Type.Object(
      {
        /**
         * A re-notification of a firing alarm (Aodh `repeat_actions`: "Remaining as alarm") acts at most
         * once per this many seconds per alarm, across every instance sharing the store; the transition
         * into `alarm` that acted starts it. 0: every re-notification acts.
         */
        repeatCooldownSeconds: Seconds(300, 0, 86_400),
        /** Projects whose Keystone tokens (Aodh `trust+http` actions) may post alarms; empty: none. */
        keystoneProjectIds: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
          default: [],
          maxItems: 64,
        }),
        /** Roles such a token must all carry (e.g. `member`). */
        keystoneRoles: Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
          default: [],
          maxItems: 16,
        }),
        /** Accept the hook secret as `?secret=` (Aodh writes action URLs, secret included, to its log). */
        allowQuerySecret: Type.Boolean({ default: true }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

/**
 * Keystone v3 (OpenStack Identity), used by src/openstack/keystone.ts: the VCA authenticates with an
 * application credential (by id, or by name with its user) and validates tokens others present (Aodh's
 * `trust+http` alarm actions). An empty `url` means no Keystone.
 */
const KeystoneConfigSchema = Type.Object(
  {
    /** Identity endpoint, e.g. `https://keystone.example:5000/v3` (the `/v3` may be left off). */
    url: Type.String({ default: '', maxLength: 2048 }),
    applicationCredentialId: Type.String({ default: '', maxLength: 256 }),
    /** With `applicationCredentialName`, the owner: `userId`, or `userName` and `userDomainName`. */
    applicationCredentialName: Type.String({ default: '', maxLength: 256 }),
    applicationCredentialSecret: Type.String({ default: '', maxLength: 1024 }),
    userId: Type.String({ default: '', maxLength: 256 }),
    userName: Type.String({ default: '', maxLength: 256 }),
    userDomainName: Type.String({ default: 'Default', maxLength: 256 }),
    /** Region and interface of the catalog endpoints the VCA uses (empty region = any). */
    region: Type.String({ default: '', maxLength: 256 }),
    interface: Type.Union([Type.Literal('public'), Type.Literal('internal'), Type.Literal('admin')], {
      default: 'public',
    }),
    /** A token is renewed once it has less than this left. */
    renewBeforeSeconds: Seconds(300, 0, 43_200),
    /** A validated token (Aodh's) is trusted again without asking Keystone for at most this long. */
    validationCacheSeconds: Seconds(60, 0, 3600),
    timeoutSeconds: Seconds(5, 0.1, 120),
  },
  { additionalProperties: false, default: {} },
);

/**
 * The Heat pre-delete hook flow (src/scaling/heat-hooks.ts, deploy/heat/): the stack holding the GPU
 * autoscaling group, polled for members whose deletion waits on their hook. An empty `stackId` turns
 * it off. Heat is reached at `url`, or at the `orchestration` endpoint of Keystone's catalog; with a
 * `url` and no Keystone, without authentication (Heat's no-auth deployments).
 */
const HeatConfigSchema = Type.Object(
  {
    /** Orchestration endpoint, `http://heat:8004/v1/<project id>` or `http://heat:8004`; empty = from Keystone's catalog. */
    url: Type.String({ default: '', maxLength: 2048 }),
    stackId: Type.String({ default: '', maxLength: 255 }),
    stackName: Type.String({ default: '', maxLength: 255 }),
    projectId: Type.String({ default: '', maxLength: 255 }),
    pollSeconds: Seconds(10, 1, 3600),
    /** How long a paused member's node drains before what is left migrates and the hook is cleared. */
    drainDeadlineSeconds: Seconds(600, 0, 86_400),
    /** The hooked resource inside each member, and the nesting from the stack down to the members. */
    serverResourceName: Type.String({ default: 'server', minLength: 1, maxLength: 255 }),
    nestedDepth: Count(2, 1, 10),
    timeoutSeconds: Seconds(10, 0.1, 120),
  },
  { additionalProperties: false, default: {} },
);
export type HeatConfig = Static<typeof HeatConfigSchema>;

const OpenstackConfigSchema = Type.Object(
  { keystone: KeystoneConfigSchema, heat: HeatConfigSchema },
  { additionalProperties: false, default: {} },
);
export type KeystoneConfig = Static<typeof KeystoneConfigSchema>;

const MetricsConfigSchema = Type.Object(
  {
    /** Per-GPU load series are exported while the fleet has at most this many GPUs (cardinality guard). */
    perGpuSeriesLimit: Count(2000, 0),
  },
  { additionalProperties: false, default: {} },
);

const LogConfigSchema = Type.Object(
  {
    level: Type.Union(
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
      { default: 'info' },
    ),
  },
  { additionalProperties: false, default: {} },
);

/** The operator console's feed (src/http/console-feed.ts). */
const ConsoleConfigSchema = Type.Object(
  {
    /**
     * Sample the fleet for the console's 15-minute history while no console is open (one read of every
     * node each historySampleSeconds). Off: history starts when a console connects (large fleets).
     */
    historyWithoutViewers: Type.Boolean({ default: true }),
    historySampleSeconds: Seconds(5, 1, 3600),
  },
  { additionalProperties: false, default: {} },
);

/** Learned title costs (src/cost/cost-learner.ts). */
const CostsConfigSchema = Type.Object(
  {
    learning: Type.Object(
      {
        /** Learn title costs from telemetry and, once confident, place with them. */
        enabled: Type.Boolean({ default: true }),
        /** How often an instance merges its evidence into the store and solves the costs again. */
        flushSeconds: Seconds(5, 0.1, 3600),
        /** Learned costs stay within [min, max] times the catalog's. */
        band: Type.Object(
          {
            min: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.5 }),
            max: Type.Number({ minimum: 1, maximum: 100, default: 2 }),
          },
          { additionalProperties: false, default: {} },
        ),
        /** The pull towards the catalog, in samples of the title alone on a GPU. */
        priorSamples: Type.Number({ minimum: 0, maximum: 1_000_000, default: 5 }),
        /** Confidence = sessions seen / (sessions seen + this). */
        confidenceSessions: Type.Number({ exclusiveMinimum: 0, maximum: 1_000_000, default: 5 }),
        /** Placement uses a learned cost once its confidence reaches this (0.5 with the default: 5 sessions). */
        minConfidence: Type.Number({ minimum: 0, maximum: 1, default: 0.5 }),
        /**
         * ... or this for a title learned heavier than the catalog (0.16 with the default: its first
         * session): too low a price overloads GPUs, too high a price only costs a slot for a while.
         */
        minConfidenceHeavier: Type.Number({ minimum: 0, maximum: 1, default: 0.16 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export const ConfigSchema = Type.Object(
  {
    server: ServerConfigSchema,
    store: StoreConfigSchema,
    catalog: CatalogConfigSchema,
    placement: PlacementConfigSchema,
    telemetry: TelemetryConfigSchema,
    costs: CostsConfigSchema,
    console: ConsoleConfigSchema,
    queue: QueueConfigSchema,
    leases: LeaseConfigSchema,
    drain: DrainConfigSchema,
    autoscaler: AutoscalerConfigSchema,
    auth: AuthConfigSchema,
    tickets: TicketConfigSchema,
    hooks: HooksConfigSchema,
    openstack: OpenstackConfigSchema,
    metrics: MetricsConfigSchema,
    log: LogConfigSchema,
  },
  { additionalProperties: false },
);

export type VcaConfig = Static<typeof ConfigSchema>;
export type PlacementConfig = Static<typeof PlacementConfigSchema>;
export type AutoscalerConfig = Static<typeof AutoscalerConfigSchema>;

const FrameSizeName = Type.String({ minLength: 3, maxLength: 16 });

export const GamesFileSchema = Type.Object(
  {
    games: Type.Array(
      Type.Object(
        {
          id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$' }),
          title: Type.String({ minLength: 1, maxLength: 128 }),
          gpuCostAt1080p60: Type.Number({ exclusiveMinimum: 0, maximum: 4 }),
          vramBaseMiB: Type.Number({ minimum: 0, maximum: 262_144 }),
          vramPerMegapixelMiB: Type.Number({ minimum: 0, maximum: 65_536 }),
          resolutions: Type.Array(FrameSizeName, { minItems: 1 }),
          fps: Type.Array(Type.Integer({ minimum: 1, maximum: 360 }), { minItems: 1 }),
          source: Type.String({ minLength: 1 }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1 },
    ),
  },
  { additionalProperties: false },
);

export const GpusFileSchema = Type.Object(
  {
    referenceGpu: Type.String({ minLength: 1 }),
    models: Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1, maxLength: 128 }),
          aliases: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { default: [] }),
          renderCapacity: Type.Number({ exclusiveMinimum: 0, maximum: 100 }),
          vramMiB: Type.Integer({ minimum: 256 }),
          gpusPerBoard: Type.Integer({ minimum: 1, maximum: 16, default: 1 }),
          nvencEngines: Type.Integer({ minimum: 0, maximum: 16 }),
          encoderPixelRate: Type.Number({ minimum: 0 }),
          encoderSessionLimit: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
          encoderSessionScope: Type.Union([Type.Literal('gpu'), Type.Literal('system')]),
          throttleTemperatureCelsius: Type.Number({ minimum: 40, maximum: 130 }),
          source: Type.String({ minLength: 1 }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1 },
    ),
  },
  { additionalProperties: false },
);
