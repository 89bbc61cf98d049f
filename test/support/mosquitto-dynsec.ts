import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../apps/api/src/common/free-port';
import { launchMosquitto, stopMosquitto } from './mosquitto';

/** Where Debian's mosquitto package puts the dynamic-security plugin. */
export const DYNSEC_PLUGIN = '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so';

export interface MosquittoDynsec {
  url: string;
  port: number;
  adminUsername: string;
  adminPassword: string;
  /** The API env that points the service at this broker as its dynsec admin. */
  apiEnv: Record<string, string>;
  /** Mosquitto's own log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * A private Mosquitto 2.0 with the dynamic-security plugin and `allow_anonymous false`, on a
 * free loopback port (never the machine's shared 1883), in a temp dir removed by stop(). Its
 * dynsec file is fresh: only the admin client exists (`mosquitto_ctrl dynsec init`).
 */
export async function startMosquittoDynsec(): Promise<MosquittoDynsec> {
  const dir = mkdtempSync(join(tmpdir(), 'vpncloud-mosquitto-'));
  const adminUsername = 'cloud-admin';
  const adminPassword = randomBytes(18).toString('base64url');
  const dynsecFile = join(dir, 'dynamic-security.json');
  try {
    await promisify(execFile)('mosquitto_ctrl', ['dynsec', 'init', dynsecFile, adminUsername, adminPassword]);
    // The port is free when picked but may be taken before Mosquitto binds it: try another then.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const started = await launchMosquitto(dir, port, [
        'allow_anonymous false',
        `plugin ${DYNSEC_PLUGIN}`,
        `plugin_opt_config_file ${dynsecFile}`,
      ]);
      if (started.ok) {
        const { proc, output } = started;
        const url = `mqtt://127.0.0.1:${port}`;
        return {
          url,
          port,
          adminUsername,
          adminPassword,
          apiEnv: {
            MQTT_URL: url,
            MQTT_BROKER_KIND: 'mosquitto-dynsec',
            MQTT_USERNAME: adminUsername,
            MQTT_PASSWORD: adminPassword,
          },
          log: () => output.join(''),
          stop: async () => {
            await stopMosquitto(proc);
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      if (!started.addressInUse || attempt >= 5) throw new Error(`mosquitto did not start:\n${started.log}`);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
