/**
 * A Heat (OpenStack Orchestration) REST client: just what the pre-delete hook flow needs — list a
 * stack's events, nested stacks included, and signal a resource (to clear a hook).
 *
 * Written against the Orchestration API v1 reference (https://docs.openstack.org/api-ref/orchestration/v1/)
 * and checked with Heat 19's own code (Debian python3-heat):
 * - `GET /v1/{project}/stacks/{stack name}/{stack id}/events` takes `nested_depth`, the filters
 *   `resource_name` / `resource_status` / `resource_action` / `resource_type`, and `limit`, `marker`,
 *   `sort_keys`, `sort_dir`; without sort keys Heat sorts newest first (heat/db/sqlalchemy/api.py,
 *   `_events_paginate_query`), so this client always asks for `created_at` ascending.
 * - An event in the list has `id`, `event_time`, `resource_name`, `logical_resource_id`,
 *   `physical_resource_id`, `resource_status` (action and status joined: `CREATE_COMPLETE`),
 *   `resource_status_reason` and `links` (`self`, `resource`, `stack`, and `root_stack` when listed
 *   with `nested_depth`); it carries no stack name or id of its own — the event's stack is the last two
 *   path segments of its `stack` link (heat/api/openstack/v1/events.py, `format_event`).
 * - `POST .../resources/{resource}/signal` with `{"unset_hook": "<hook>"}` clears a hook; a hook that
 *   is not set is `400` with error type `InvalidBreakPointHook` (heat/engine/resource.py,
 *   `_signal_check_hook`), a stack or resource that is gone is `404`.
 *
 * Authentication: a Keystone token in `X-Auth-Token` (renewed once after a 401), or none for Heat's
 * no-auth deployments (then `X-Auth-Project` names the project, as heat/common/noauth.py reads it).
 */

/** Where tokens come from: the Keystone client (src/openstack/keystone.ts) fits this shape. */
export interface HeatAuth {
  token(): Promise<string>;
  /** Forgets the cached token after Heat refused it. */
  invalidate(): void;
}

export interface HeatClientOptions {
  /**
   * The orchestration endpoint as Keystone's catalog lists it (`http://heat:8004/v1/<project id>`), or
   * the API root (`http://heat:8004`), then `/v1/<projectId>` is added. A function is asked on every
   * call (a catalog look-up that may change with the token).
   */
  endpoint: string | (() => Promise<string>);
  projectId: string;
  /** null: no authentication (Heat's no-auth middleware). */
  auth: HeatAuth | null;
  timeoutMs?: number;
  /** Injected for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** A stack as Heat names it in URLs. */
export interface StackRef {
  name: string;
  id: string;
}

export interface HeatEvent {
  id: string;
  time: string;
  resourceName: string;
  physicalResourceId: string;
  /** Action and status joined, as the API gives it: `CREATE_COMPLETE`. */
  resourceStatus: string;
  reason: string;
  /** The stack the event belongs to (from its `stack` link); null when the link is missing. */
  stack: StackRef | null;
}

export interface ListEventsOptions {
  nestedDepth?: number;
  resourceName?: string;
  /** Page size; every page is read. */
  pageSize?: number;
  /** Most events read in one listing (a guard against a runaway stack). */
  maxEvents?: number;
}

/** What a signal to clear a hook came to. */
export type UnsetHookOutcome = 'cleared' | 'not-set' | 'gone';

/** Heat answered, but not with success (or not at all: `status` 0). */
export class HeatApiError extends Error {
  override name = 'HeatApiError';
  constructor(
    message: string,
    readonly status: number,
    /** Heat's error type (`InvalidBreakPointHook`, `EntityNotFound`, ...), when the body names one. */
    readonly type: string | null = null,
  ) {
    super(message);
  }
  /** Worth trying again later: no answer, a timeout, 408, 429 or 5xx. */
  get transient(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

const defaultTimeoutMs = 10_000;
const defaultPageSize = 200;
const defaultMaxEvents = 20_000;

/** The endpoint with `/v1/<project>` on it, no trailing slash. */
export function orchestrationBase(endpoint: string, projectId: string): string {
  const trimmed = endpoint.replace(/\/+$/, '');
  if (/\/v1\/[^/]+$/.test(trimmed)) return trimmed;
  if (trimmed.endsWith('/v1')) return `${trimmed}/${encodeURIComponent(projectId)}`;
  return `${trimmed}/v1/${encodeURIComponent(projectId)}`;
}

/** The stack a Heat link points at: `.../stacks/<name>/<id>` (the last two segments, decoded). */
export function stackFromLink(href: string): StackRef | null {
  let path: string;
  try {
    path = new URL(href).pathname;
  } catch {
    return null;
  }
  const match = /\/stacks\/([^/]+)\/([^/]+)\/?$/.exec(path);
  if (!match) return null;
  try {
    return { name: decodeURIComponent(match[1]!), id: decodeURIComponent(match[2]!) };
  } catch {
    return null;
  }
}

function stackPath(stack: StackRef): string {
  return `stacks/${encodeURIComponent(stack.name)}/${encodeURIComponent(stack.id)}`;
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function parseEvent(raw: unknown): HeatEvent | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const event = raw as Record<string, unknown>;
  if (typeof event.id !== 'string') return null;
  const links = Array.isArray(event.links) ? (event.links as unknown[]) : [];
  const stackLink = links.find(
    (link): link is { href: string; rel: string } =>
      typeof link === 'object' &&
      link !== null &&
      (link as { rel?: unknown }).rel === 'stack' &&
      typeof (link as { href?: unknown }).href === 'string',
  );
  return {
    id: event.id,
    time: text(event.event_time),
    resourceName: text(event.resource_name) || text(event.logical_resource_id),
    physicalResourceId: text(event.physical_resource_id),
    resourceStatus: text(event.resource_status),
    reason: text(event.resource_status_reason),
    stack: stackLink ? stackFromLink(stackLink.href) : null,
  };
}

/** Heat's error body: `{"error": {"type": ..., "message": ...}, "title": ..., "explanation": ...}`. */
function readError(status: number, body: string): HeatApiError {
  let type: string | null = null;
  let detail = '';
  try {
    const parsed = JSON.parse(body) as { error?: { type?: unknown; message?: unknown }; title?: unknown };
    if (typeof parsed.error?.type === 'string') type = parsed.error.type;
    if (typeof parsed.error?.message === 'string') detail = parsed.error.message;
    else if (typeof parsed.title === 'string') detail = parsed.title;
  } catch {
    detail = body.slice(0, 200);
  }
  return new HeatApiError(
    `Heat answered ${status}${type ? ` ${type}` : ''}: ${detail.slice(0, 300)}`,
    status,
    type,
  );
}

export class HeatClient {
  private readonly options: HeatClientOptions;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(options: HeatClientOptions) {
    this.options = options;
    this.fetchImpl = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  }

  /**
   * Every event of a stack (and of its nested stacks down to `nestedDepth`), oldest first, read page by
   * page with `marker`.
   */
  async listEvents(stack: StackRef, options: ListEventsOptions = {}): Promise<HeatEvent[]> {
    const pageSize = options.pageSize ?? defaultPageSize;
    const maxEvents = options.maxEvents ?? defaultMaxEvents;
    const events: HeatEvent[] = [];
    let marker: string | undefined;
    for (;;) {
      const query = new URLSearchParams({
        sort_keys: 'created_at',
        sort_dir: 'asc',
        limit: String(pageSize),
      });
      if (options.nestedDepth) query.set('nested_depth', String(options.nestedDepth));
      if (options.resourceName) query.set('resource_name', options.resourceName);
      if (marker) query.set('marker', marker);
      const response = await this.send('GET', `${stackPath(stack)}/events?${query}`);
      const body = (await this.readJson(response)) as { events?: unknown };
      if (!Array.isArray(body.events)) {
        throw new HeatApiError('Heat answered an event list without "events"', response.status);
      }
      const page = body.events as unknown[];
      for (const raw of page) {
        const event = parseEvent(raw);
        if (event) events.push(event);
      }
      const last = page.at(-1) as { id?: unknown } | undefined;
      if (page.length < pageSize || typeof last?.id !== 'string' || events.length >= maxEvents) return events;
      marker = last.id;
    }
  }

  /** Signals a resource with `details` (JSON); resolves once Heat accepted it (2xx). */
  async signal(stack: StackRef, resourceName: string, details: unknown): Promise<void> {
    const response = await this.send(
      'POST',
      `${stackPath(stack)}/resources/${encodeURIComponent(resourceName)}/signal`,
      details,
    );
    await response.arrayBuffer().catch(() => undefined);
  }

  /**
   * Clears a hook on a resource: `cleared` when Heat took the signal, `not-set` when the hook is no
   * longer set (cleared already, by us or someone else), `gone` when the stack or resource is deleted.
   */
  async unsetHook(stack: StackRef, resourceName: string, hook: string): Promise<UnsetHookOutcome> {
    try {
      await this.signal(stack, resourceName, { unset_hook: hook });
      return 'cleared';
    } catch (error) {
      if (error instanceof HeatApiError) {
        if (error.status === 404) return 'gone';
        if (error.status === 400 && error.type === 'InvalidBreakPointHook') return 'not-set';
      }
      throw error;
    }
  }

  private async endpoint(): Promise<string> {
    const { endpoint, projectId } = this.options;
    return orchestrationBase(typeof endpoint === 'string' ? endpoint : await endpoint(), projectId);
  }

  /** One call; with Keystone, a 401 drops the token and the call is sent once more. */
  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    const first = await this.sendOnce(method, path, body);
    if (first.status !== 401 || !this.options.auth) return this.checked(first);
    await first.arrayBuffer().catch(() => undefined);
    this.options.auth.invalidate();
    return this.checked(await this.sendOnce(method, path, body));
  }

  private async sendOnce(method: string, path: string, body?: unknown): Promise<Response> {
    const url = `${await this.endpoint()}/${path}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.auth) headers['x-auth-token'] = await this.options.auth.token();
    else headers['x-auth-project'] = this.options.projectId;
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await this.fetchImpl(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const reason =
        (error as Error).name === 'TimeoutError' ? `no answer in ${this.timeoutMs} ms` : String(error);
      throw new HeatApiError(`Heat unreachable (${method} ${new URL(url).pathname}): ${reason}`, 0);
    }
  }

  private async checked(response: Response): Promise<Response> {
    if (response.ok) return response;
    throw readError(response.status, await response.text().catch(() => ''));
  }

  private async readJson(response: Response): Promise<unknown> {
    const body = await response.text();
    try {
      return JSON.parse(body);
    } catch {
      throw new HeatApiError('Heat answered with a body that is not JSON', response.status);
    }
  }
}
