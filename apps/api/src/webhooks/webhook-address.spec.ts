import { Webhook } from 'standardwebhooks';
import { DEFAULT_RETRY_DELAYS_MS, loadWebhookConfig } from '../config/webhook-config';
import { isPrivateAddress, resolveAllowed } from './webhook-address';
import { generateWebhookSecret, signPayload, WebhookSecretBox } from './webhook-secret';

describe('webhook address check', () => {
  it.each([
    '127.0.0.1',
    '10.0.0.1',
    '172.31.255.255',
    '192.168.0.10',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fd12:3456::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a00:1',
    'ff02::1',
  ])('should treat %s as private', (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:808:808'])(
    'should treat %s as public',
    (address) => {
      expect(isPrivateAddress(address)).toBe(false);
    },
  );

  it('should refuse a private literal unless private addresses are allowed', async () => {
    await expect(resolveAllowed('10.1.2.3', false)).rejects.toThrow('private');
    await expect(resolveAllowed('localhost', false)).rejects.toThrow('loopback name');
    await expect(resolveAllowed('10.1.2.3', true)).resolves.toEqual({ address: '10.1.2.3', family: 4 });
  });
});

describe('webhook secrets', () => {
  it('should sign so that the standardwebhooks package verifies', () => {
    const secret = generateWebhookSecret();
    const body = JSON.stringify({ type: 'webhook.test', timestamp: new Date().toISOString(), data: {} });
    const ts = Math.floor(Date.now() / 1000);
    const headers = {
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(ts),
      'webhook-signature': signPayload(secret, 'msg_1', ts, body),
    };
    expect(() => new Webhook(secret).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(generateWebhookSecret()).verify(body, headers)).toThrow();
  });

  it('should seal a secret so only the same key and webhook id open it', () => {
    const box = new WebhookSecretBox('k'.repeat(32));
    const secret = generateWebhookSecret();
    const sealed = box.seal(secret, 'a');
    expect(sealed.toString('utf8')).not.toContain(secret.slice(6));
    expect(box.open(sealed, 'a')).toBe(secret);
    expect(() => box.open(sealed, 'b')).toThrow();
    expect(() => new WebhookSecretBox('x'.repeat(32)).open(sealed, 'a')).toThrow();
  });
});

describe('webhook configuration', () => {
  it('should scale the default retry schedule and name a bad variable', () => {
    const c = loadWebhookConfig({ WEBHOOK_RETRY_SCALE: '0.001' });
    expect(c.retryDelaysMs).toEqual(DEFAULT_RETRY_DELAYS_MS.map((d) => Math.round(d / 1000)));
    expect(c).toMatchObject({ allowPrivate: false, timeoutMs: 10_000 });
    expect(DEFAULT_RETRY_DELAYS_MS.reduce((a, b) => a + b, 0) / 3_600_000).toBeGreaterThan(20);
    expect(loadWebhookConfig({ WEBHOOK_RETRY_DELAYS_MS: '10, 20' }).retryDelaysMs).toEqual([10, 20]);
    expect(() => loadWebhookConfig({ WEBHOOK_ALLOW_PRIVATE: 'yes' })).toThrow('WEBHOOK_ALLOW_PRIVATE');
    expect(() => loadWebhookConfig({ WEBHOOK_TIMEOUT_MS: '5' })).toThrow('WEBHOOK_TIMEOUT_MS');
    expect(() => loadWebhookConfig({ WEBHOOK_RETRY_DELAYS_MS: '1,x' })).toThrow('WEBHOOK_RETRY_DELAYS_MS');
    expect(() => loadWebhookConfig({ WEBHOOK_SECRET_KEY: 'short' })).toThrow('WEBHOOK_SECRET_KEY');
  });
});
