/**
 * Key naming of the Redis store. Every key of one gaming cluster is `<keyPrefix>:{<cluster>}:<rest>`:
 * one hash tag for the whole cluster, so every key hashes to one Redis Cluster slot and every Lua
 * script may touch any of them. The scripts (scripts/lib/keys.lua) build the same names from the base
 * they find in KEYS[1]; which KEYS hold which key is generated from `scriptKeyNames` (lua-emitter.ts).
 *
 * | key                               | type   | holds                                                   |
 * |-----------------------------------|--------|---------------------------------------------------------|
 * | `nodes`                           | zset   | node ids, scored by registration sequence (list order)  |
 * | `seq`                             | string | INCR counter: registration, queue and commit order      |
 * | `fresh`                           | zset   | GPU ids (`node#index`) with live telemetry, by arrival  |
 * | `deadlines`                       | zset   | session ids by sessionDeadline (ended: forget-at time)  |
 * | `pools`                           | set    | pool names `<model>|<region>` that ever held a GPU      |
 * | `draining`                        | zset   | draining node ids, by registration sequence             |
 * | `queue:<class>`                   | zset   | queued session ids of a priority class, by sequence     |
 * | `node:<id>`                       | hash   | registration, labels, state, system encoder limit       |
 * | `gpu:<node>#<index>`              | hash   | catalog facts, committed, measured, eligibility, pool   |
 * | `gpu-sessions:<node>#<index>`     | zset   | session ids committed on the GPU, by commit sequence    |
 * | `pool-gpu:<pool>`, `pool-enc:...` | zset   | eligible GPU ids by free render / encoder share (0..1)  |
 * | `session:<id>`                    | hash   | a session's fields; `spec` is its immutable part as JSON |
 * | `webhook:<key>`                   | string | `<expiresAt>:<result JSON>`, with a PX time to live      |
 * | `outbox`                          | zset   | callback outbox entry ids, by due time (ms)             |
 * | `outbox-entry:<id>`               | hash   | kind, node (registration JSON), createdAt, attempts, lastError |
 * | `owner-sessions:<owner>`          | set    | live session ids of one gamer (the per-gamer limit counts them) |
 */

/** The fixed keys every script declares, KEYS[1] on, in this order; then one queue per priority class. */
export const scriptKeyNames = ['nodes', 'seq', 'fresh', 'deadlines', 'pools'] as const;

export interface RedisKeys {
  /** `<keyPrefix>:{<cluster>}`: every key starts with it. */
  readonly base: string;
  /** The fixed keys every script declares in KEYS, in this order (queue keys last, highest class first). */
  readonly scriptKeys: readonly string[];
  session(id: string): string;
  webhook(key: string): string;
  /** The callback outbox's zset of entry ids by due time. */
  readonly outbox: string;
}

export function redisKeys(keyPrefix: string, cluster: string, priorityClasses: readonly string[]): RedisKeys {
  if (cluster.includes('{') || cluster.includes('}')) {
    throw new Error(`store.redis.cluster "${cluster}" must not contain braces: it is the Redis hash tag`);
  }
  if (keyPrefix.includes('{') || keyPrefix.includes('}')) {
    throw new Error(
      `store.redis.keyPrefix "${keyPrefix}" must not contain braces: the cluster is the hash tag`,
    );
  }
  const base = `${keyPrefix}:{${cluster}}`;
  return {
    base,
    scriptKeys: [
      ...scriptKeyNames.map((name) => `${base}:${name}`),
      ...priorityClasses.map((name) => `${base}:queue:${name}`),
    ],
    session: (id) => `${base}:session:${id}`,
    webhook: (key) => `${base}:webhook:${key}`,
    outbox: `${base}:outbox`,
  };
}
