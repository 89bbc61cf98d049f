// Kura's request/response convention: the cloud publishes a command carrying `request.id` and
// `requester.client.id`; the device answers on `$EDC/{account}/{requester}/VPNCLIENT-V2/REPLY/{id}`.
import {
  KuraPayload,
  findMetric,
  getStringMetric,
  metric,
  KuraMetricType,
  storableText,
} from './kura-payload';
import { Metrics } from './metrics';
import { CLIENT_ID_PATTERN, REQUEST_ID_PATTERN } from './topics';
import { VpnStatusReport, readStatusReport, statusMetrics } from './vpn-status';

/** Kura response codes (HTTP-like). */
export const ResponseCodes = {
  OK: 200,
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  INTERNAL_ERROR: 500,
} as const;

/** Longest exception message kept from a reply; the rest is cut before it reaches logs or the API. */
export const MAX_EXCEPTION_MESSAGE_LENGTH = 1024;

export interface CommandRequest {
  requestId: string;
  requesterClientId: string;
  /** The connect command's VPN profile (see vpn-profile.ts); absent for other commands. */
  body?: Buffer;
}

export function buildCommandRequest(r: CommandRequest): KuraPayload {
  const payload: KuraPayload = {
    timestamp: Date.now(),
    metrics: [
      metric.string(Metrics.REQUEST_ID, r.requestId),
      metric.string(Metrics.REQUESTER_CLIENT_ID, r.requesterClientId),
    ],
  };
  if (r.body !== undefined) payload.body = r.body;
  return payload;
}

/**
 * The request metrics, or null when either is missing, not a STRING, or not usable as a level of
 * the reply topic (the device builds that topic from them, so they must not add levels or wildcards).
 */
export function readCommandRequest(p: KuraPayload): CommandRequest | null {
  const requestId = getStringMetric(p, Metrics.REQUEST_ID);
  const requesterClientId = getStringMetric(p, Metrics.REQUESTER_CLIENT_ID);
  if (requestId === undefined || !REQUEST_ID_PATTERN.test(requestId)) return null;
  if (requesterClientId === undefined || !CLIENT_ID_PATTERN.test(requesterClientId)) return null;
  const request: CommandRequest = { requestId, requesterClientId };
  if (p.body !== undefined) request.body = p.body;
  return request;
}

export interface CommandReply {
  /** One of ResponseCodes: 200, 400 (bad request or profile), 404 (unknown command), 500. */
  code: number;
  exceptionMessage?: string;
  status?: VpnStatusReport;
}

export function buildCommandReply(r: CommandReply): KuraPayload {
  const metrics = [metric.int32(Metrics.RESPONSE_CODE, r.code)];
  if (r.exceptionMessage !== undefined) {
    metrics.push(metric.string(Metrics.RESPONSE_EXCEPTION_MESSAGE, r.exceptionMessage));
  }
  if (r.status !== undefined) metrics.push(...statusMetrics(r.status));
  return { timestamp: Date.now(), metrics };
}

/**
 * The reply, or null without an INT32 `response.code`. The exception message is kept when it is
 * a STRING (cut to MAX_EXCEPTION_MESSAGE_LENGTH, control characters replaced); the status only
 * when it is complete and valid.
 */
export function readCommandReply(p: KuraPayload): CommandReply | null {
  const code = findMetric(p, Metrics.RESPONSE_CODE);
  if (code?.type !== KuraMetricType.INT32 || typeof code.value !== 'number') return null;
  const reply: CommandReply = { code: code.value };
  const message = getStringMetric(p, Metrics.RESPONSE_EXCEPTION_MESSAGE);
  if (message !== undefined)
    reply.exceptionMessage = storableText(message.slice(0, MAX_EXCEPTION_MESSAGE_LENGTH));
  const status = readStatusReport(p);
  if (status !== null) reply.status = status;
  return reply;
}
