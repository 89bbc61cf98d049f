import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const db = globalThis.__TEST_EMBEDDED_PG__;
  globalThis.__TEST_EMBEDDED_PG__ = undefined;
  await db?.stop();
  if (process.env.TEST_DIST_OWNED && process.env.TEST_DIST_DIR) {
    rmSync(process.env.TEST_DIST_DIR, { recursive: true, force: true });
    delete process.env.TEST_DIST_DIR;
  }
}
