import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../apps/api/src/common/free-port';

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
      const started = await launch(dir, port, [
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
            await stopProcess(proc);
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

type Launch =
  { ok: true; proc: ChildProcess; output: string[] } | { ok: false; addressInUse: boolean; log: string };

export interface MosquittoOpen {
  url: string;
  /** Mosquitto's own log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * A private Mosquitto that lets anyone in (`allow_anonymous true`, no persistence), on a free
 * loopback port (never the machine's shared 1883), in a temp dir removed by stop(): an external
 * broker of kind `external-open` that no other test file publishes on.
 */
export async function startMosquittoOpen(): Promise<MosquittoOpen> {
  const dir = mkdtempSync(join(tmpdir(), 'vpncloud-mosquitto-'));
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const started = await launch(dir, port, ['allow_anonymous true']);
      if (started.ok) {
        const { proc, output } = started;
        return {
          url: `mqtt://127.0.0.1:${port}`,
          log: () => output.join(''),
          stop: async () => {
            await stopProcess(proc);
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

async function launch(dir: string, port: number, settings: string[]): Promise<Launch> {
  const conf = join(dir, `mosquitto-${port}.conf`);
  writeFileSync(
    conf,
    [
      'per_listener_settings false',
      `listener ${port} 127.0.0.1`,
      ...settings,
      // Run as root, Mosquitto drops to the `mosquitto` user, which could not write the dynsec
      // file in this root-owned temp dir.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      // stderr: unbuffered, so "running" and bind errors are seen at once.
      'log_dest stderr',
      '',
    ].join('\n'),
  );
  const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  return new Promise<Launch>((resolve) => {
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      const text = output.join('');
      if (/running/.test(text)) resolve({ ok: true, proc, output });
      else if (/Address already in use/.test(text)) {
        void stopProcess(proc).then(() => resolve({ ok: false, addressInUse: true, log: text }));
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', () =>
      resolve({
        ok: false,
        addressInUse: /Address already in use/.test(output.join('')),
        log: output.join(''),
      }),
    );
  });
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}
