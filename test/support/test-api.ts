import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApi, type RunningApi } from '../../apps/api/src/bootstrap';
import { loadConfig } from '../../apps/api/src/config/app-config';
import { createRootLogger } from '../../apps/api/src/common/logging';
import { EmbeddedBroker } from '../../apps/api/src/mqtt/embedded-broker';
import { createTestDatabase, type TestDatabase } from './database';

export const TEST_ADMIN_PASSWORD = 'admin-password-for-tests';

export interface StartTestApiOptions {
  /**
   * Run on this database instead of a fresh one (e.g. to start a second API on
   * the same data). The caller owns it: stop() does not drop it.
   */
  database?: TestDatabase;
  /** Receives the API's JSON log lines (set LOG_LEVEL in env to choose what is logged). */
  logDestination?: { write(line: string): void };
  /**
   * Use the embedded broker even when TEST_MQTT_URL is set: the broker's own device auth and
   * ACL exist only there (an external broker enforces them through its own hooks).
   */
  embeddedBroker?: boolean;
}

export interface TestApi extends RunningApi {
  db: TestDatabase;
  /** URL of the broker the API uses (embedded on a free port, or TEST_MQTT_URL). */
  mqttUrl: string;
  /** True when this API uses the real broker of TEST_MQTT_URL, which checks no credentials. */
  externalBroker: boolean;
}

/**
 * Boots the whole API in this process, exactly as main.ts does, on a fresh
 * database and a free HTTP port. The broker is the embedded one on a free port
 * unless TEST_MQTT_URL points at a real one (CI uses the machine's Mosquitto).
 */
export async function startTestApi(
  env: Record<string, string> = {},
  options: StartTestApiOptions = {},
): Promise<TestApi> {
  const db = options.database ?? (await createTestDatabase());
  const dropDb = options.database ? async () => undefined : () => db.drop();
  const dataDir = mkdtempSync(join(tmpdir(), 'vpncloud-test-data-'));
  const config = loadConfig({
    DATABASE_URL: db.url,
    PORT: '0',
    MQTT_PORT: '0',
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    JWT_SECRET: randomBytes(32).toString('hex'),
    ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
    MQTT_CLIENT_ID: `test-cloud-${randomBytes(4).toString('hex')}`,
    // Throwaway client ids must not leave persistent sessions queueing messages in a shared broker.
    ...(process.env.TEST_MQTT_URL && !options.embeddedBroker
      ? { MQTT_URL: process.env.TEST_MQTT_URL, MQTT_CLEAN_SESSION: 'true' }
      : {}),
    ...env,
  });
  let api: RunningApi;
  try {
    api = await startApi(config, createRootLogger(config.logLevel, options.logDestination));
  } catch (err) {
    await dropDb();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const broker = api.app.get(EmbeddedBroker);
  return {
    ...api,
    db,
    mqttUrl: config.mqttUrl ?? broker.url,
    externalBroker: config.mqttUrl !== undefined,
    stop: async () => {
      await api.stop();
      await dropDb();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
