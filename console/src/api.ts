/**
 * The console's REST calls: every action goes through the gateway's v1 API with the operator's
 * bearer token, as any other client's would. The token lives in sessionStorage (gone with the tab),
 * never in a URL.
 */

const tokenKey = 'vca.operatorToken';

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(tokenKey);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(tokenKey);
    else sessionStorage.setItem(tokenKey, token);
  } catch {
    // Storage disabled: the token lives only as long as the page.
  }
}

export interface ApiResult<T = unknown> {
  status: number;
  ok: boolean;
  body: T | undefined;
  /** The problem's detail (or title) when the call failed. */
  error: string | undefined;
}

/** One call with the bearer token; never throws (a network failure is status 0). */
export async function api<T = unknown>(
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiResult<T>> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (error) {
    return { status: 0, ok: false, body: undefined, error: `the gateway did not answer (${String(error)})` };
  }
  let parsed: unknown;
  try {
    const text = await response.text();
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  const problem = parsed as { detail?: string; title?: string } | undefined;
  return {
    status: response.status,
    ok: response.ok,
    body: parsed as T | undefined,
    error: response.ok ? undefined : (problem?.detail ?? problem?.title ?? `HTTP ${response.status}`),
  };
}
