import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Secret handling (docs/security.md). Human passwords get a slow, salted scrypt hash.
 * Server-generated secrets carry 256 random bits, so a SHA-256 digest compared in
 * constant time is enough and keeps a reconnect storm of devices cheap.
 */

/**
 * OWASP's minimum for scrypt: N = 2^17, r = 8, p = 1 (128 MiB and ~0.5–1 s of one core per
 * hash). Stored hashes carry their own parameters, so older, cheaper ones still verify and are
 * re-hashed at the next successful sign-in (needsRehash).
 */
export const SCRYPT = { N: 2 ** 17, r: 8, p: 1, keylen: 32 } as const;

/** Stored parameters are trusted only up to this cost, so a corrupted row cannot exhaust memory. */
const MAX_N = 2 ** 20;

/**
 * At most this many scrypt computations run at once. Each holds a libuv thread (of 4) and
 * 128 MiB for up to a second; a burst of sign-ins queues here instead of starving the thread
 * pool (DNS lookups, file I/O) and memory.
 */
const MAX_CONCURRENT_HASHES = 2;
let running = 0;
const waiting: Array<() => void> = [];

async function withHashSlot<T>(task: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT_HASHES) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await task();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  // Node refuses parameters needing more than maxmem (default 32 MiB); scrypt needs 128·N·r bytes.
  const maxmem = 128 * (opts.N ?? SCRYPT.N) * (opts.r ?? SCRYPT.r) * 2;
  return withHashSlot(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        scrypt(password, salt, keylen, { ...opts, maxmem }, (err, key) => (err ? reject(err) : resolve(key))),
      ),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

interface StoredHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

function parseHash(stored: string): StoredHash | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [, n, r, p, saltB64, keyB64] = parts;
  const N = Number(n);
  const R = Number(r);
  const P = Number(p);
  const valid =
    Number.isInteger(N) &&
    N > 1 &&
    N <= MAX_N &&
    (N & (N - 1)) === 0 &&
    Number.isInteger(R) &&
    R >= 1 &&
    R <= 32 &&
    Number.isInteger(P) &&
    P >= 1 &&
    P <= 16;
  if (!valid) return null;
  const key = Buffer.from(keyB64, 'base64');
  if (key.length < 16) return null;
  return { N, r: R, p: P, salt: Buffer.from(saltB64, 'base64'), key };
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (!parsed) return false;
  const key = await scryptAsync(password, parsed.salt, parsed.key.length, {
    N: parsed.N,
    r: parsed.r,
    p: parsed.p,
  });
  return timingSafeEqual(key, parsed.key);
}

/** True when a stored hash was made with other (older, cheaper) parameters than hashPassword uses now. */
export function needsRehash(stored: string): boolean {
  const parsed = parseHash(stored);
  return (
    !parsed ||
    parsed.N !== SCRYPT.N ||
    parsed.r !== SCRYPT.r ||
    parsed.p !== SCRYPT.p ||
    parsed.key.length !== SCRYPT.keylen ||
    parsed.salt.length < 16
  );
}

/** A hash of a random password, verified against when a user does not exist, so both paths cost the same. */
let dummyHash: Promise<string> | undefined;
export function dummyPasswordHash(): Promise<string> {
  return (dummyHash ??= hashPassword(randomBytes(16).toString('hex')));
}

export function generateSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export function digestEquals(secret: string, expected: Buffer): boolean {
  const actual = digest(secret);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
