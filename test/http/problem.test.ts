/** Specification of the RFC 9457 problem bodies the HTTP layer sends. */

import { describe, expect, it } from 'vitest';
import { VcaError } from '../../src/errors.js';
import { problemBody, problemHeaders, problemType, toPublicError } from '../../src/http/problem.js';

describe('http problem+json', () => {
  it('derives the type URI from the code', () => {
    expect(problemType('VCA_ERR_BODY_TOO_LARGE')).toBe('https://vca.dev/problems/vca-err-body-too-large');
  });

  it('puts the standard members first and never lets extras override them', () => {
    const err = new VcaError('VCA_ERR_VALIDATION', 'fps must be a number', { field: '/fps', code: 'nope' });
    expect(problemBody(err)).toEqual({
      type: 'https://vca.dev/problems/vca-err-validation',
      title: 'The request body or parameters are invalid',
      status: 400,
      detail: 'fps must be a number',
      code: 'VCA_ERR_VALIDATION',
      field: '/fps',
    });
  });

  it('turns retryAfterSeconds and allow into headers', () => {
    const err = new VcaError('VCA_ERR_METHOD_NOT_ALLOWED', undefined, {
      allow: ['GET', 'PUT'],
      retryAfterSeconds: 0.2,
    });
    expect(problemHeaders(err)).toEqual({ allow: 'GET, PUT', 'retry-after': '1' });
  });

  it('hides anything that is not a VcaError behind VCA_ERR_INTERNAL', () => {
    const hidden = toPublicError(new Error('connection string with password'));
    expect(problemBody(hidden)).toMatchObject({
      code: 'VCA_ERR_INTERNAL',
      status: 500,
      detail: 'Internal error',
    });
  });
});
