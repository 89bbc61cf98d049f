// A long-lived `nft -i` for the small firewall changes of single messages: starting nft costs
// 20-60 ms (loading its libraries, plus `ip netns exec`), a line to a running one about a millisecond.
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';

import { inNetns } from './system-tools';
import { Logger } from '@app/edge';

/** An nft command the running nft refused, or a session that broke; the message is nft's own. */
export class NftSessionError extends Error {
  override readonly name = 'NftSessionError';
}

/**
 * nft reads one line at a time and runs each line as one transaction (`;` separates its commands),
 * so a line is applied completely or not at all. It prints nothing for a successful change and an
 * `Error:` block for a failed one; to see where the answer to a line ends, every line is followed
 * by a listing of a set that is always empty (`marker`), whose output is recognised.
 */
export class NftSession {
  private child: ChildProcessWithoutNullStreams | undefined;
  private output = '';
  private waiter:
    | { child: ChildProcessWithoutNullStreams; resolve: (out: string) => void; reject: (err: Error) => void }
    | undefined;
  private tail: Promise<unknown> = Promise.resolve();
  private readonly sentinel: string;
  private readonly marker: string;

  constructor(
    private readonly netns: string | undefined,
    table: string,
    markerSet: string,
    private readonly logger: Logger,
    private readonly timeoutMs = 10_000,
  ) {
    this.sentinel = `list set inet ${table} ${markerSet}`;
    this.marker = `\tset ${markerSet} {`;
  }

  /** Runs one line (one transaction); rejects with nft's message when it refuses it. */
  run(line: string): Promise<void> {
    if (line.includes('\n')) throw new NftSessionError('an nft session line must not contain a line break');
    const result = this.tail.then(() => this.exchange(line));
    this.tail = result.catch(() => undefined);
    return result;
  }

  close(): void {
    const child = this.child;
    this.child = undefined;
    if (child === undefined) return;
    child.stdin.end();
    // nft exits on end of input; a stuck one must not outlive the gateway.
    setTimeout(() => child.kill('SIGKILL'), 2000).unref();
  }

  private async exchange(line: string): Promise<void> {
    const child = this.child ?? this.start();
    const out = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => this.fail(child, new NftSessionError(`nft did not answer within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      this.waiter = {
        child,
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      child.stdin.write(`${line}\n${this.sentinel}\n`);
    });
    const at = out.indexOf('Error:');
    if (at >= 0) {
      const eol = out.indexOf('\n', at);
      throw new NftSessionError(`nft: ${out.slice(at, eol < 0 ? undefined : eol).trim()}`);
    }
    if (out.trim() !== '') this.logger.debug({ out: out.slice(0, 500) }, 'nft said');
  }

  private start(): ChildProcessWithoutNullStreams {
    const env = { ...process.env };
    delete env.LOG_LEVEL;
    // stderr joins stdout so that an error is read before the marker that follows it.
    const [file, args] = inNetns(this.netns, 'sh', ['-c', 'exec nft -i 2>&1']);
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.output = '';
    const onData = (chunk: Buffer): void => {
      if (child === this.child) this.onOutput(child, chunk.toString('utf8'));
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.stdin.on('error', () => undefined); // reported through 'exit'
    child.on('error', (err) => this.fail(child, new NftSessionError(`nft -i: ${err.message}`)));
    child.on('exit', (code, signal) => {
      const why = signal !== null ? `killed by ${signal}` : `exit code ${code}`;
      const said = child === this.child ? this.output.trim().slice(0, 300) : '';
      this.fail(child, new NftSessionError(`nft -i ended (${why})${said !== '' ? `: ${said}` : ''}`));
    });
    this.logger.debug({ pid: child.pid }, 'nft session started');
    return child;
  }

  private onOutput(child: ChildProcessWithoutNullStreams, text: string): void {
    this.output += text;
    const at = this.output.indexOf(this.marker);
    if (at < 0) return;
    const end = this.output.indexOf('}\n}\n', at);
    if (end < 0) return;
    const header = this.output.lastIndexOf('table inet ', at);
    const answer = this.output.slice(0, header < 0 ? at : header);
    this.output = this.output.slice(end + 4);
    const waiter = this.waiter;
    if (waiter?.child !== child) return;
    this.waiter = undefined;
    waiter.resolve(answer);
  }

  /** Ends that session (a new one starts with the next line) and fails its line in flight. */
  private fail(child: ChildProcessWithoutNullStreams, err: Error): void {
    if (child === this.child) {
      this.child = undefined;
      child.kill('SIGKILL');
    }
    const waiter = this.waiter;
    if (waiter?.child !== child) return;
    this.waiter = undefined;
    waiter.reject(err);
  }
}
