/**
 * One POST to the orchestrator and what its answer means for the next attempt: delivered (2xx), worth
 * another attempt (408, 429, 5xx, a network error or the timeout; with the wait the answer's
 * Retry-After asks for, if any), or refused for good (any other status: the request itself is wrong).
 * The in-memory retries of OutboundCalls and the callback outbox's worker both attempt through it.
 */

export interface OutboundPost {
  url: string;
  /** JSON body; undefined sends an empty POST (what a Heat alarm_url expects). */
  body?: unknown;
  headers?: Readonly<Record<string, string>>;
  timeoutMs: number;
}

export type PostOutcome =
  | { kind: 'delivered'; detail: string }
  | { kind: 'retry'; detail: string; retryAfterMs: number | null }
  | { kind: 'refused'; detail: string };

/** Statuses that may succeed later: the rest of 4xx will not get better by retrying. */
function retryable(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

const httpDateShape = /^[A-Za-z]{3}.*\d{1,2}:\d{2}:\d{2}/;

/**
 * The wait a Retry-After header asks for, ms: delay-seconds, or an HTTP date measured against the
 * answer's own Date header (so the two clocks need not agree), else against `now`. Null when absent or
 * unreadable; never negative.
 */
export function retryAfterMs(value: string | null, responseDate: string | null, now: number): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP date names its day first and has a time of day; Date.parse alone accepts far more ('-5').
  if (!httpDateShape.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  const dated = responseDate === null ? Number.NaN : Date.parse(responseDate);
  return Math.max(0, at - (Number.isNaN(dated) ? now : dated));
}

/** One attempt; never throws. `now` (wall-clock ms) reads an HTTP-date Retry-After without a Date header. */
export async function postOnce(post: OutboundPost, now: () => number = Date.now): Promise<PostOutcome> {
  try {
    const response = await fetch(post.url, {
      method: 'POST',
      headers: {
        ...(post.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...post.headers,
      },
      body: post.body === undefined ? '' : JSON.stringify(post.body),
      signal: AbortSignal.timeout(post.timeoutMs),
    });
    await response.arrayBuffer().catch(() => undefined);
    const detail = `HTTP ${response.status}`;
    if (response.ok) return { kind: 'delivered', detail };
    if (!retryable(response.status)) return { kind: 'refused', detail };
    const headers = response.headers;
    return {
      kind: 'retry',
      detail,
      retryAfterMs: retryAfterMs(headers.get('retry-after'), headers.get('date'), now()),
    };
  } catch (error) {
    return { kind: 'retry', detail: (error as Error).message, retryAfterMs: null };
  }
}
