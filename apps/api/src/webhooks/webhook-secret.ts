import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Signing secrets of webhook endpoints (docs/webhooks.md, "Secrets").
 *
 * A secret is `whsec_` + base64 of 32 random bytes, the Standard Webhooks format. The server
 * must sign with it, so unlike API keys it cannot be kept as a digest: it is stored encrypted
 * with AES-256-GCM under a key derived from WEBHOOK_SECRET_KEY (or JWT_SECRET), and the row's
 * id is the additional authenticated data, so a ciphertext copied onto another row does not
 * decrypt.
 */
const PREFIX = 'whsec_';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export function generateWebhookSecret(): string {
  return PREFIX + randomBytes(32).toString('base64');
}

/** The raw HMAC key: the base64-decoded part after `whsec_`. */
export function secretKeyBytes(secret: string): Buffer {
  return Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
}

/** `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, the Standard Webhooks signature. */
export function signPayload(
  secret: string,
  messageId: string,
  timestampSeconds: number,
  body: string,
): string {
  const mac = createHmac('sha256', secretKeyBytes(secret))
    .update(`${messageId}.${timestampSeconds}.${body}`)
    .digest('base64');
  return `v1,${mac}`;
}

/** Encrypts and decrypts signing secrets at rest. */
export class WebhookSecretBox {
  private readonly key: Buffer;

  /** `material`: WEBHOOK_SECRET_KEY, or JWT_SECRET when that is unset. */
  constructor(material: string) {
    this.key = Buffer.from(hkdfSync('sha256', material, 'vpn-cloud', 'webhook-signing-secrets', 32));
  }

  /** iv (12) | tag (16) | ciphertext. */
  seal(secret: string, webhookId: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(webhookId));
    const ct = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), ct]);
  }

  /** Throws when the key changed since the secret was sealed (or the row was tampered with). */
  open(sealed: Buffer, webhookId: string): string {
    const iv = sealed.subarray(0, IV_BYTES);
    const tag = sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAAD(Buffer.from(webhookId));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
      'utf8',
    );
  }
}
