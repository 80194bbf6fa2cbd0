/** Test support: one HTTP call to a gateway as a role (bearer token), JSON in and out. */

export type Role = 'gamer' | 'operator' | 'none' | { token: string };

export interface RoleTokens {
  gamerToken: string;
  operatorToken: string;
}

export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** Sends `body` as JSON when it is not a string; parses a JSON answer, else returns its text. */
export async function callAs(
  baseUrl: string,
  tokens: RoleTokens,
  role: Role,
  method: string,
  requestPath: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<ApiAnswer> {
  const token =
    role === 'gamer'
      ? tokens.gamerToken
      : role === 'operator'
        ? tokens.operatorToken
        : role === 'none'
          ? undefined
          : role.token;
  const response = await fetch(baseUrl + requestPath, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {}
  return { status: response.status, body: parsed, headers: response.headers };
}
