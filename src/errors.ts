/**
 * The one registry of VCA errors. Every failure a caller can see has a stable machine `code`, an HTTP
 * status and a message that says what to do; the HTTP layer turns a `VcaError` into
 * `application/problem+json` (RFC 9457). Domain code throws these, never bare `Error`s, for anything
 * caused by input.
 */

export const errorCatalog = {
  VCA_ERR_VALIDATION: { status: 400, title: 'The request body or parameters are invalid' },
  VCA_ERR_MALFORMED_JSON: { status: 400, title: 'The request body is not valid JSON' },
  VCA_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Send the body as application/json' },
  VCA_ERR_BODY_TOO_LARGE: { status: 413, title: 'The request body is larger than the configured limit' },
  VCA_ERR_UNKNOWN_GAME: { status: 422, title: 'The game is not in the catalog' },
  VCA_ERR_BAD_RESOLUTION: { status: 422, title: 'The resolution is not understood' },
  VCA_ERR_RESOLUTION_NOT_ALLOWED: { status: 422, title: 'The game does not allow this resolution' },
  VCA_ERR_FPS_NOT_ALLOWED: { status: 422, title: 'The game does not allow this frame rate' },
  VCA_ERR_UNKNOWN_GPU_MODEL: { status: 422, title: 'The GPU model is not in the GPU catalog' },
  VCA_ERR_UNPLACEABLE: { status: 422, title: 'No GPU model in the catalog can render this format' },
  VCA_ERR_UNKNOWN_PRIORITY: { status: 422, title: 'The priority class is not configured' },
  VCA_ERR_NO_CAPACITY: { status: 503, title: 'No rendering node can take the session now' },
  VCA_ERR_QUEUE_FULL: { status: 503, title: 'The waiting queue is full' },
  VCA_ERR_SESSION_NOT_FOUND: { status: 404, title: 'No such session' },
  VCA_ERR_SESSION_ENDED: { status: 410, title: 'The session has ended' },
  VCA_ERR_SESSION_EXISTS: { status: 409, title: 'A session with this id already exists' },
  VCA_ERR_WEBHOOK_IN_PROGRESS: {
    status: 409,
    title: 'The same webhook delivery is being applied now; retry after the time given',
  },
  VCA_ERR_GAMER_SESSION_LIMIT: {
    status: 409,
    title: 'The gamer already holds as many live sessions as allowed; end one first',
  },
  VCA_ERR_NODE_NOT_FOUND: { status: 404, title: 'No such rendering node' },
  VCA_ERR_NODE_CONFLICT: { status: 409, title: 'The node is already registered with a different definition' },
  VCA_ERR_NODE_STATE: { status: 409, title: 'The node is not in a state that allows this operation' },
  VCA_ERR_GPU_NOT_FOUND: { status: 422, title: 'The telemetry names a GPU the node was not registered with' },
  VCA_ERR_UNAUTHORIZED: { status: 401, title: 'Missing or invalid credentials' },
  VCA_ERR_FORBIDDEN: { status: 403, title: 'These credentials do not grant access to this route' },
  VCA_ERR_SIGNATURE: {
    status: 401,
    title: 'The webhook signature is missing, invalid or outside its time window',
  },
  VCA_ERR_ROUTE_NOT_FOUND: { status: 404, title: 'No such route' },
  VCA_ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'The route does not accept this method' },
  VCA_ERR_RATE_LIMITED: { status: 429, title: 'Too many requests from this client' },
  VCA_ERR_TOO_MANY_CONNECTIONS: { status: 429, title: 'Too many connections from this address' },
  VCA_ERR_STORE_UNAVAILABLE: { status: 503, title: 'The state store is unreachable' },
  VCA_ERR_IDENTITY_UNAVAILABLE: {
    status: 503,
    title: 'Keystone (OpenStack Identity) could not be reached or refused the VCA; retry later',
  },
  VCA_ERR_SHUTTING_DOWN: { status: 503, title: 'The gateway is shutting down' },
  VCA_ERR_INTERNAL: { status: 500, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof errorCatalog;

/** An error a caller can act on: stable code, HTTP status, human detail and optional extra fields. */
export class VcaError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly title: string;
  readonly extra: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, detail?: string, extra?: Record<string, unknown>) {
    const entry = errorCatalog[code];
    super(detail ?? entry.title);
    this.name = 'VcaError';
    this.code = code;
    this.status = entry.status;
    this.title = entry.title;
    this.extra = extra;
  }
}

export function isVcaError(value: unknown): value is VcaError {
  return value instanceof VcaError;
}
