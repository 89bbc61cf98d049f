import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../apps/api/src/common/free-port';

const START_TIMEOUT_MS = 30_000;

export interface PrivateMosquitto {
  url: string;
  port: number;
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
 * and start (never the machine's shared 1883). No persistence: a restart loses every session, as
 * a broker that crashed would.
 */
export async function startPrivateMosquitto(): Promise<PrivateMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'vpncloud-mosquitto-'));
  let port = 0;
  let proc: ChildProcess | undefined;
  const launch = async (): Promise<'ok' | 'in-use'> => {
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        'per_listener_settings false',
        'allow_anonymous true',
        `listener ${port} 127.0.0.1`,
        'max_queued_messages 100000',
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
    const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    const result = await new Promise<string>((resolve) => {
      // A busy machine may take seconds; a broker silent for this long will not come up.
      const timer = setTimeout(
        () => resolve(`no "running" line after ${START_TIMEOUT_MS} ms:\n${output.join('')}`),
        START_TIMEOUT_MS,
      );
      child.once('exit', () => clearTimeout(timer));
      const onData = (chunk: Buffer) => {
        output.push(chunk.toString());
        const text = output.join('');
        if (/running/.test(text)) {
          clearTimeout(timer);
          resolve('ok');
        } else if (/Address already in use/.test(text)) resolve('in-use');
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', () =>
        resolve(/Address already in use/.test(output.join('')) ? 'in-use' : output.join('')),
      );
    });
    if (result === 'ok') {
      proc = child;
      return 'ok';
    }
    await stopProcess(child);
    if (result === 'in-use') return 'in-use';
    throw new Error(`mosquitto did not start:\n${result}`);
  };
  const start = async (): Promise<void> => {
    // A restart on the same port may find it in TIME_WAIT users for a moment: retry.
    for (let attempt = 1; ; attempt++) {
      if ((await launch()) === 'ok') return;
      if (attempt >= 50) throw new Error(`mosquitto could not bind port ${port}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    if ((await launch()) === 'ok') break;
    if (attempt >= 5) throw new Error('mosquitto did not find a free port');
  }
  const stop = async () => {
    if (proc) await stopProcess(proc);
    proc = undefined;
  };
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
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
