import { randomBytes, scryptSync } from 'node:crypto';
import { hashPassword, needsRehash, SCRYPT, verifyPassword } from './secrets';

const legacyHash = (password: string, N = 16384): string => {
  const salt = randomBytes(16);
  const key = scryptSync(password, salt, 32, { N, r: 8, p: 1 });
  return `scrypt$${N}$8$1$${salt.toString('base64')}$${key.toString('base64')}`;
};

describe('password hashing (scrypt)', () => {
  it("should use OWASP's minimum cost: N=2^17, r=8, p=1", async () => {
    expect(SCRYPT).toMatchObject({ N: 131072, r: 8, p: 1 });
    const hash = await hashPassword('correct horse battery staple');
    expect(hash).toMatch(/^scrypt\$131072\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
    expect(await verifyPassword('correct horse battery staple', hash)).toBe(true);
    expect(await verifyPassword('correct horse battery stable', hash)).toBe(false);
    expect(needsRehash(hash)).toBe(false);
  });

  it('should salt every hash', async () => {
    expect(await hashPassword('same')).not.toBe(await hashPassword('same'));
  });

  it('should still verify an older, cheaper hash and flag it for re-hashing', async () => {
    const old = legacyHash('an old password');
    expect(await verifyPassword('an old password', old)).toBe(true);
    expect(await verifyPassword('another password', old)).toBe(false);
    expect(needsRehash(old)).toBe(true);
  });

  it.each([
    ['not a hash', 'plain'],
    ['another scheme', 'bcrypt$2b$10$abc'],
    ['a cost that is not a power of two', legacyHash('x').replace('$16384$', '$16385$')],
    ['an absurd cost (memory exhaustion)', legacyHash('x').replace('$16384$', '$1073741824$')],
    ['an empty key', 'scrypt$16384$8$1$AAAA$'],
  ])('should refuse (not throw on) a stored value that is %s', async (_what, stored) => {
    await expect(verifyPassword('x', stored)).resolves.toBe(false);
    expect(needsRehash(stored)).toBe(true);
  });

  it('should run many hashes at once without exceeding memory limits', async () => {
    const hashes = await Promise.all(Array.from({ length: 4 }, (_, i) => hashPassword(`pw-${i}`)));
    expect(new Set(hashes).size).toBe(4);
  });
});
