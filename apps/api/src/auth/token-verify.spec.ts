import { JwtService } from '@nestjs/jwt';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { TokenService } from './token.service';
import type { TokensRepository } from './tokens.repository';

/** TokenService.verify: the signature is checked once per token string, the expiry on every call. */
describe('TokenService.verify', () => {
  const jwt = new JwtService({ secret: 'unit-test-secret-unit-test-secret' });
  const service = () => new TokenService(jwt, {} as DataSource, {} as TokensRepository, {} as AppConfig);
  const sign = (expiresIn: number, jti: string = randomUUID()) =>
    jwt.sign({ sub: 'u1', sId: 's1', typ: 'user' }, { jwtid: jti, expiresIn, algorithm: 'HS256' });

  afterEach(() => jest.restoreAllMocks());

  it('should verify the signature once and answer the same claims for the same token', async () => {
    const tokens = service();
    const token = sign(60);
    const verifyAsync = jest.spyOn(jwt, 'verifyAsync');
    const first = await tokens.verify(token);
    const second = await tokens.verify(token);
    expect(second).toEqual(first);
    expect(first.subject).toEqual({ userId: 'u1' });
    expect(verifyAsync).toHaveBeenCalledTimes(1);
  });

  it('should refuse a remembered token once it has expired', async () => {
    const tokens = service();
    const token = sign(60);
    await tokens.verify(token);
    const now = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(now + 61_000);
    const refusal = await tokens.verify(token).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(AppError);
    expect(refusal).toMatchObject({ code: 'UNAUTHORIZED', details: 'The access token has expired' });
  });

  it('should still check the signature of another token string with the same claims', async () => {
    const tokens = service();
    const jti = randomUUID();
    const token = sign(60, jti);
    await tokens.verify(token);
    const forged = new JwtService({ secret: 'another-secret-another-secret-xx' }).sign(
      { sub: 'u1', sId: 's1', typ: 'user' },
      { jwtid: jti, expiresIn: 60, algorithm: 'HS256' },
    );
    await expect(tokens.verify(forged)).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      details: 'The access token is invalid',
    });
    const [header, payload] = token.split('.');
    await expect(tokens.verify(`${header}.${payload}.AAAA`)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
  });
});
