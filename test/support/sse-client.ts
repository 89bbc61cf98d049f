import { request as httpRequest, type IncomingMessage, type ClientRequest } from 'node:http';

/** One parsed Server-Sent Events message (or a comment line). */
export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

export interface SseStream {
  status: number;
  headers: IncomingMessage['headers'];
  /** The body of a non-200 answer (an error body), parsed. */
  errorBody?: unknown;
  messages: SseMessage[];
  comments: string[];
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** Waits until `predicate` holds for the messages so far (fails after timeoutMs). */
  waitFor(predicate: (messages: SseMessage[]) => boolean, timeoutMs?: number): Promise<SseMessage[]>;
  waitForComment(text: string, timeoutMs?: number): Promise<void>;
  close(): void;
}

/**
 * A minimal SSE client over node:http with an incremental parser (the text/event-stream format of
 * the HTML standard: `field: value` lines, blank line ends a message, `:` starts a comment).
 */
export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = httpRequest(
      url,
      { headers: { Accept: 'text/event-stream', ...headers } },
      (res) => {
        const messages: SseMessage[] = [];
        const comments: string[] = [];
        const waiters = new Set<() => void>();
        const notify = () => waiters.forEach((w) => w());
        let ended!: () => void;
        const endedP = new Promise<void>((r) => (ended = r));
        res.on('end', () => {
          ended();
          notify();
        });
        res.on('close', () => {
          ended();
          notify();
        });
        res.on('error', () => ended());
        const stream: SseStream = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          messages,
          comments,
          ended: endedP,
          waitFor(predicate, timeoutMs = 10_000) {
            return new Promise((ok, fail) => {
              const check = () => {
                if (predicate(messages)) {
                  waiters.delete(check);
                  clearTimeout(timer);
                  ok(messages);
                }
              };
              const timer = setTimeout(() => {
                waiters.delete(check);
                fail(
                  new Error(
                    `SSE wait timed out; got ${JSON.stringify(messages.map((m) => [m.id, m.event]))}`,
                  ),
                );
              }, timeoutMs);
              waiters.add(check);
              check();
            });
          },
          async waitForComment(text, timeoutMs = 10_000) {
            await new Promise<void>((ok, fail) => {
              const check = () => {
                if (comments.includes(text)) {
                  waiters.delete(check);
                  clearTimeout(timer);
                  ok();
                }
              };
              const timer = setTimeout(
                () => fail(new Error(`no comment "${text}": ${comments.join('|')}`)),
                timeoutMs,
              );
              waiters.add(check);
              check();
            });
          },
          close: () => {
            req.destroy();
            res.destroy();
          },
        };
        if (res.statusCode !== 200) {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => {
            try {
              stream.errorBody = JSON.parse(body);
            } catch {
              stream.errorBody = body;
            }
            resolve(stream);
          });
          return;
        }
        let buffer = '';
        let current: Partial<SseMessage> & { data?: string } = {};
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let nl: number;
          while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
            if (line === '') {
              if (current.data !== undefined || current.event !== undefined) {
                messages.push({
                  id: current.id,
                  event: current.event ?? 'message',
                  data: current.data ?? '',
                });
              }
              current = {};
              continue;
            }
            if (line.startsWith(':')) {
              comments.push(line.slice(1).trim());
              continue;
            }
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            let value = colon < 0 ? '' : line.slice(colon + 1);
            if (value.startsWith(' ')) value = value.slice(1);
            if (field === 'data')
              current.data = current.data === undefined ? value : `${current.data}\n${value}`;
            else if (field === 'event') current.event = value;
            else if (field === 'id') current.id = value;
          }
          notify();
        });
        resolve(stream);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
