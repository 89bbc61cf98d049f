import type { Request } from 'express';
import { QueryFailedError } from 'typeorm';
import { AppExceptionFilter } from './exception.filter';

const req = { id: 'req-1', method: 'GET', path: '/x' } as unknown as Request;
const pgError = (code: string) =>
  new QueryFailedError('SELECT 1', [], Object.assign(new Error('x'), { code }));
const filter = new AppExceptionFilter();
// The filter logs what it maps; keep the test output quiet.
jest
  .spyOn((filter as unknown as { logger: { error: () => void } }).logger, 'error')
  .mockImplementation(() => undefined);
jest
  .spyOn((filter as unknown as { logger: { warn: () => void } }).logger, 'warn')
  .mockImplementation(() => undefined);

describe('AppExceptionFilter: database failures', () => {
  it.each([
    [
      'a refused connection',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    ],
    ['a dropped connection', new Error('Connection terminated unexpectedly')],
    ['a pool timeout', new Error('timeout exceeded when trying to connect')],
    ['SQLSTATE 08006', pgError('08006')],
    ['SQLSTATE 57P01 (admin shutdown)', pgError('57P01')],
    ['SQLSTATE 53300 (too many connections)', pgError('53300')],
  ])('should answer %s with 503 SERVICE_UNAVAILABLE and Retry-After', (_what, err) => {
    const { status, body, headers } = filter.toBody(err, req);
    expect(status).toBe(503);
    expect(body.result).toBe('SERVICE_UNAVAILABLE');
    expect(body.details).toContain('req-1');
    expect(Number(headers?.['Retry-After'])).toBeGreaterThan(0);
  });

  it.each(['22003', '22P02', '22021', '22001'])(
    'should answer SQLSTATE %s (bad client data) with 400',
    (code) => {
      const { status, body } = filter.toBody(pgError(code), req);
      expect(status).toBe(400);
      expect(body.result).toBe('INVALID_ARGUMENT');
    },
  );

  it('should still answer other storage errors with 500 STORAGE_ERROR', () => {
    expect(filter.toBody(pgError('42703'), req)).toMatchObject({
      status: 500,
      body: { result: 'STORAGE_ERROR' },
    });
  });

  it('should answer a body parser refusal it does not know with 400, not 500', () => {
    const err = Object.assign(new Error('The input exceeded the depth'), {
      type: 'querystring.parse.rangeError',
      status: 400,
    });
    expect(filter.toBody(err, req)).toMatchObject({ status: 400, body: { result: 'INVALID_ARGUMENT' } });
  });
});
