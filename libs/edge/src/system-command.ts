import { spawn } from 'node:child_process';

/** A system tool that could not be run or exited non-zero; the message carries its stderr. */
export class SystemCommandError extends Error {
  override readonly name = 'SystemCommandError';

  constructor(
    message: string,
    readonly stderr: string,
    readonly exitCode: number | null,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface RunOptions {
  /** Written to the tool's stdin (e.g. a private key for `wg pubkey`), so it never shows in argv. */
  input?: string;
  timeoutMs?: number;
}

/**
 * Runs a tool without a shell, so profile values (endpoints, keys) can never be read as shell syntax.
 * LOG_LEVEL is removed from the tool's environment: with it set, a daemonising wireguard-go keeps
 * our stdout/stderr pipes open and the call would never complete.
 */
export function runSystemCommand(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<string> {
  const env = { ...process.env };
  delete env.LOG_LEVEL;
  delete env.WG_PROCESS_FOREGROUND;
  const command = [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, [...args], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 15_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (cause) => {
      reject(new SystemCommandError(`${command}: ${cause.message}`, '', null, { cause }));
    });
    child.on('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString('utf8').trim();
      if (code === 0) return resolve(Buffer.concat(out).toString('utf8'));
      const why = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
      reject(new SystemCommandError(`${command}: ${stderr || why}`, stderr, code));
    });
    child.stdin.on('error', () => undefined); // the tool may exit before reading its input
    child.stdin.end(options.input ?? '');
  });
}
