import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../apps/api/src/common/free-port';

/** A busy machine may take seconds to start Mosquitto; one silent for this long will not come up. */
const START_TIMEOUT_MS = 30_000;

export type MosquittoLaunch =
  { ok: true; proc: ChildProcess; output: string[] } | { ok: false; addressInUse: boolean; log: string };

/**
 * Starts `mosquitto` on `port` (loopback only) with `settings` added to its config, written in
 * `dir`. Resolves once it logs "running", or with why not: the port was taken (the caller tries
 * another), it exited, or it said nothing for START_TIMEOUT_MS (then it is stopped).
 */
export async function launchMosquitto(
  dir: string,
  port: number,
  settings: string[],
): Promise<MosquittoLaunch> {
  const conf = join(dir, `mosquitto-${port}.conf`);
  writeFileSync(
    conf,
    [
      'per_listener_settings false',
      `listener ${port} 127.0.0.1`,
      // As docs/brokers.md recommends: without it a request/reply one at a time waits ~40 ms.
      'set_tcp_nodelay true',
      ...settings,
      // Run as root, Mosquitto drops to the `mosquitto` user, which could not write a file (the
      // dynsec one) in this root-owned temp dir.
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      'log_type error',
      'log_type warning',
      'log_type notice',
      // "… running" is an information line: without it the start is never seen.
      'log_type information',
      // stderr: unbuffered, so "running" and bind errors are seen at once.
      'log_dest stderr',
      '',
    ].join('\n'),
  );
  const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  return new Promise<MosquittoLaunch>((resolve) => {
    const timer = setTimeout(() => {
      const log = `no "running" line after ${START_TIMEOUT_MS} ms:\n${output.join('')}`;
      void stopMosquitto(proc).then(() => resolve({ ok: false, addressInUse: false, log }));
    }, START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output.push(chunk.toString());
      const text = output.join('');
      if (/running/.test(text)) {
        clearTimeout(timer);
        resolve({ ok: true, proc, output });
      } else if (/Address already in use/.test(text)) {
        clearTimeout(timer);
        void stopMosquitto(proc).then(() => resolve({ ok: false, addressInUse: true, log: text }));
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve({
        ok: false,
        addressInUse: /Address already in use/.test(output.join('')),
        log: output.join(''),
      });
    });
  });
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
export async function stopMosquitto(proc: ChildProcess): Promise<void> {
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

export interface PrivateMosquitto {
  url: string;
  port: number;
  /** Mosquitto's own log of its current run (for failure messages). */
  log(): string;
  /** Stops the broker (SIGTERM) without restarting it. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop()); nothing persists across. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** Stops it for good and removes its folder. */
  destroy(): Promise<void>;
}

/**
 * A private Mosquitto allowing anonymous clients, on a free loopback port, that a test may stop
 * and start (never the machine's shared 1883): an external broker of kind `external-open` that no
 * other test file publishes on. No persistence: a restart loses every session, as a broker that
 * crashed would.
 */
export async function startPrivateMosquitto(): Promise<PrivateMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'vpncloud-mosquitto-'));
  const settings = ['allow_anonymous true', 'max_queued_messages 100000'];
  let port = 0;
  let running: { proc: ChildProcess; output: string[] } | undefined;
  const start = async (): Promise<void> => {
    // A restart on the same port may find it still held for a moment: retry.
    for (let attempt = 1; ; attempt++) {
      const launched = await launchMosquitto(dir, port, settings);
      if (launched.ok) {
        running = launched;
        return;
      }
      if (!launched.addressInUse) throw new Error(`mosquitto did not start:\n${launched.log}`);
      if (attempt >= 50) throw new Error(`mosquitto could not bind port ${port}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    // The port is free when picked but may be taken before Mosquitto binds it: try another then.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const launched = await launchMosquitto(dir, port, settings);
      if (launched.ok) {
        running = launched;
        break;
      }
      if (!launched.addressInUse || attempt >= 5)
        throw new Error(`mosquitto did not start:\n${launched.log}`);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const stop = async () => {
    if (running) await stopMosquitto(running.proc);
    running = undefined;
  };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    log: () => running?.output.join('') ?? '',
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
