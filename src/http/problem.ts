/** Turns errors into RFC 9457 `application/problem+json` bodies and headers; the one place the wire shape lives. */

import { type ErrorCode, errorCatalog, isVcaError, VcaError } from '../errors.js';

export const problemContentType = 'application/problem+json';

const problemTypeBase = 'https://vca.dev/problems/';

/** The RFC 9457 body: standard members first, then the error's extra members (which may not override them). */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  [extension: string]: unknown;
}

/** `VCA_ERR_BODY_TOO_LARGE` -> `https://vca.dev/problems/vca-err-body-too-large`. */
export function problemType(code: ErrorCode): string {
  return problemTypeBase + code.toLowerCase().replaceAll('_', '-');
}

export function problemBody(err: VcaError): ProblemBody {
  const body: ProblemBody = {
    type: problemType(err.code),
    title: err.title,
    status: err.status,
    detail: err.message,
    code: err.code,
  };
  if (err.extra !== undefined) {
    for (const [key, value] of Object.entries(err.extra)) {
      if (!(key in body)) body[key] = value;
    }
  }
  return body;
}

/**
 * Headers that travel with a problem: `Retry-After` when the error carries `retryAfterSeconds`
 * (rate limits, queue full, shutting down), `Allow` when it carries `allow` (405).
 */
export function problemHeaders(err: VcaError): Record<string, string> {
  const headers: Record<string, string> = {};
  const retryAfter = err.extra?.retryAfterSeconds;
  if (typeof retryAfter === 'number' && Number.isFinite(retryAfter) && retryAfter >= 0) {
    headers['retry-after'] = String(Math.ceil(retryAfter));
  }
  const allow = err.extra?.allow;
  if (Array.isArray(allow) && allow.every((method) => typeof method === 'string')) {
    headers.allow = allow.join(', ');
  }
  return headers;
}

/**
 * Maps anything thrown to the error a caller may see: a `VcaError` as itself, anything else as
 * `VCA_ERR_INTERNAL` with the catalog title only, so internals (messages, stacks) never leak.
 */
export function toPublicError(err: unknown): VcaError {
  if (isVcaError(err)) return err;
  return new VcaError('VCA_ERR_INTERNAL', errorCatalog.VCA_ERR_INTERNAL.title);
}
