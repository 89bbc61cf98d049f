'use strict';
// A small REST client for setting the bench up (accounts, users, devices, credentials).

class Api {
  constructor(baseUrl, token) {
    this.baseUrl = baseUrl;
    this.token = token;
  }

  withToken(token) {
    return new Api(this.baseUrl, token);
  }

  async call(method, path, body, { expect = [200, 201, 204], timeoutMs = 30_000 } = {}) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!expect.includes(res.status)) {
      throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 300)}`);
    }
    return text ? JSON.parse(text) : undefined;
  }

  async login(username, password) {
    const t = await this.call('POST', '/v1/authentication/user', { username, password });
    return this.withToken(t.tokenId);
  }
}

/** Runs fn over items with at most `concurrency` at once; results in item order. */
async function mapConcurrent(items, concurrency, fn, onProgress) {
  const out = new Array(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
      onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

/**
 * Creates `count` devices in the caller's account through the REST API (create, then issue
 * credentials), `concurrency` at a time. Returns [{id, clientId, username, password}].
 */
async function provisionDevices(api, clientIds, concurrency, onProgress) {
  return mapConcurrent(
    clientIds,
    concurrency,
    async (clientId) => {
      const d = await api.call('POST', '/v1/_/devices', { clientId });
      const c = await api.call('POST', `/v1/_/devices/${d.id}/credentials`, {});
      return { id: d.id, clientId, username: c.username, password: c.password, account: c.account };
    },
    onProgress,
  );
}

module.exports = { Api, mapConcurrent, provisionDevices };
