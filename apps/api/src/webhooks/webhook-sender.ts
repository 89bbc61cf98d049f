import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { AddressRefused, resolveAllowed, urlHost } from './webhook-address';
import { signPayload } from './webhook-secret';

/** What one delivery attempt needs. */
export interface SendRequest {
  url: string;
  secret: string;
  messageId: string;
  body: string;
  timeoutMs: number;
  allowPrivate: boolean;
  /** Aborted on shutdown: the attempt ends at once and is retried later. */
  signal: AbortSignal;
}

/** Outcome of one attempt: the receiver's status code, or why there is none. */
export interface SendResult {
  statusCode: number | null;
  error: string | null;
  /** True when the attempt was cut by `signal` (shutdown), not by the receiver. */
  abandoned: boolean;
}

const USER_AGENT = 'device-vpn-cloud-webhooks/1';

/**
 * Posts one signed delivery (Standard Webhooks headers). The host is resolved and checked here,
 * and the connection is pinned to that very address through `lookup`, so a DNS answer that
 * changes between the check and the connect (DNS rebinding) cannot reach a private address.
 * Redirects are not followed: a 3xx is a failed attempt. The whole attempt (resolution,
 * connect, request, response headers) is cut after `timeoutMs`.
 */
export async function sendWebhook(req: SendRequest): Promise<SendResult> {
  const url = new URL(req.url);
  const host = urlHost(url);
  const deadline = AbortSignal.any([req.signal, AbortSignal.timeout(req.timeoutMs)]);
  let target: { address: string; family: 4 | 6 };
  try {
    target = await Promise.race([
      resolveAllowed(host, req.allowPrivate),
      new Promise<never>((_, reject) =>
        deadline.addEventListener('abort', () => reject(new Error('aborted')), { once: true }),
      ),
    ]);
  } catch (err) {
    if (req.signal.aborted) return { statusCode: null, error: 'abandoned at shutdown', abandoned: true };
    if (err instanceof AddressRefused)
      return { statusCode: null, error: `refused: ${err.message}`, abandoned: false };
    return {
      statusCode: null,
      error: `timed out after ${req.timeoutMs} ms resolving ${host}`,
      abandoned: false,
    };
  }

  const timestamp = Math.floor(Date.now() / 1000);
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [
        target,
      ]);
    } else {
      callback(null, target.address, target.family);
    }
  };
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const finish = (result: SendResult): void => {
      if (settled) return;
      settled = true;
      deadline.removeEventListener('abort', onAbort);
      resolve(result);
    };
    const request = transport.request(
      url,
      {
        method: 'POST',
        lookup: pinned,
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(req.body),
          'user-agent': USER_AGENT,
          'webhook-id': req.messageId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signPayload(req.secret, req.messageId, timestamp, req.body),
        },
      },
      (res) => {
        const statusCode = res.statusCode ?? 0;
        // The status decides; the body is not needed, so the connection is closed at once.
        res.destroy();
        request.destroy();
        const redirect =
          statusCode >= 300 && statusCode < 400
            ? `redirect not followed${res.headers.location ? ` (Location: ${res.headers.location.slice(0, 200)})` : ''}`
            : null;
        const error = redirect ?? (statusCode >= 200 && statusCode < 300 ? null : `HTTP ${statusCode}`);
        finish({ statusCode, error, abandoned: false });
      },
    );
    const onAbort = (): void => {
      const abandoned = req.signal.aborted;
      request.destroy();
      finish({
        statusCode: null,
        error: abandoned ? 'abandoned at shutdown' : `timed out after ${req.timeoutMs} ms`,
        abandoned,
      });
    };
    if (deadline.aborted) return onAbort();
    deadline.addEventListener('abort', onAbort, { once: true });
    request.on('error', (err: NodeJS.ErrnoException) => {
      finish({
        statusCode: null,
        error: `connection failed: ${err.code ?? err.message}`.slice(0, 500),
        abandoned: false,
      });
    });
    request.end(req.body);
  });
}
