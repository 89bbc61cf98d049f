import { QueryFailedError } from 'typeorm';
import { isTransientDbError, retryTransient } from './transient-retry';

const pgError = (code: string) =>
  new QueryFailedError('SELECT 1', [], Object.assign(new Error('x'), { code }));

describe('retryTransient', () => {
  it('should retry a transient failure until the task succeeds', async () => {
    let calls = 0;
    const result = await retryTransient(
      async () => {
        if (++calls < 3) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return 'ok';
      },
      5,
      1,
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
  });

  it('should not retry a constraint violation', async () => {
    let calls = 0;
    await expect(
      retryTransient(
        async () => {
          calls++;
          throw pgError('23505');
        },
        5,
        1,
      ),
    ).rejects.toBeInstanceOf(QueryFailedError);
    expect(calls).toBe(1);
  });

  it('should give up after the last attempt', async () => {
    let calls = 0;
    await expect(
      retryTransient(
        async () => {
          calls++;
          throw pgError('57P01');
        },
        3,
        1,
      ),
    ).rejects.toBeInstanceOf(QueryFailedError);
    expect(calls).toBe(3);
  });

  it('should classify database errors', () => {
    expect(isTransientDbError(pgError('08006'))).toBe(true);
    expect(isTransientDbError(pgError('40P01'))).toBe(true);
    expect(isTransientDbError(pgError('22P02'))).toBe(false);
    expect(isTransientDbError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isTransientDbError(new Error('boom'))).toBe(false);
  });
});
