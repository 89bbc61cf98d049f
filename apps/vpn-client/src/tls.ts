// The HTTPS certificate of the local API: the one given with --tls-cert/--tls-key, or a
// self-signed one for localhost/127.0.0.1 generated on first start and kept in the state dir.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { generate } from 'selfsigned';

import type { TlsFiles } from './config';
import { Logger } from '@app/edge';

export interface TlsMaterial {
  cert: string;
  key: string;
  /** SHA-256 fingerprint, as browsers show it, so the engineer can check what they accept. */
  fingerprint256: string;
  certFile: string;
}

export const CERT_FILE = 'tls-cert.pem';
export const KEY_FILE = 'tls-key.pem';

const VALID_DAYS = 825;
/** Renewed this long before it expires, so a browser never meets an expired one mid-session. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

export class TlsError extends Error {
  override readonly name = 'TlsError';
}

export async function loadCertificateFiles(files: TlsFiles): Promise<TlsMaterial> {
  let cert: string;
  let key: string;
  try {
    [cert, key] = await Promise.all([readFile(files.certFile, 'utf8'), readFile(files.keyFile, 'utf8')]);
  } catch (err) {
    throw new TlsError(`TLS files: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const problem = checkPair(cert, key, false);
  if (problem !== undefined) throw new TlsError(`${files.certFile}: ${problem}`);
  return { cert, key, fingerprint256: new X509Certificate(cert).fingerprint256, certFile: files.certFile };
}

/**
 * Reuses the certificate in the state dir while it is valid and matches its key, so a browser
 * that was told to trust it keeps trusting it; otherwise makes a new one.
 */
export async function loadOrCreateCertificate(stateDir: string, logger: Logger): Promise<TlsMaterial> {
  const dir = resolve(stateDir);
  const certFile = join(dir, CERT_FILE);
  const keyFile = join(dir, KEY_FILE);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const existing = await readPair(certFile, keyFile);
  if (existing !== undefined) {
    const problem = checkPair(existing.cert, existing.key, true);
    if (problem === undefined) {
      await chmod(keyFile, 0o600);
      return { ...existing, fingerprint256: new X509Certificate(existing.cert).fingerprint256, certFile };
    }
    logger.warn({ certFile, problem }, 'replacing the TLS certificate');
  }
  const { cert, key } = await generateCertificate();
  // The key first: a cert without its key would be replaced at the next start anyway.
  await writeFile(keyFile, key, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  await writeFile(certFile, cert, { mode: 0o644 });
  const fingerprint256 = new X509Certificate(cert).fingerprint256;
  logger.info({ certFile, fingerprint256 }, 'generated a self-signed TLS certificate for localhost');
  return { cert, key, fingerprint256, certFile };
}

async function readPair(
  certFile: string,
  keyFile: string,
): Promise<{ cert: string; key: string } | undefined> {
  try {
    const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    return { cert, key };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Why the pair cannot be served, or undefined when it can. */
function checkPair(cert: string, key: string, renewSoon: boolean): string | undefined {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    return 'not a PEM certificate';
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key)))
      return 'the private key does not belong to the certificate';
  } catch {
    return 'not a PEM private key';
  }
  const notAfter = new Date(x509.validTo).getTime();
  const margin = renewSoon ? RENEW_BEFORE_MS : 0;
  if (notAfter - margin <= Date.now()) return `it expires on ${x509.validTo}`;
  return undefined;
}

function generateCertificate(): Promise<{ cert: string; key: string }> {
  return new Promise((resolvePem, reject) => {
    generate(
      [
        { name: 'commonName', value: 'localhost' },
        { name: 'organizationName', value: 'vpn-client (local)' },
      ],
      {
        days: VALID_DAYS,
        keySize: 2048,
        algorithm: 'sha256',
        extensions: [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', serverAuth: true },
          {
            name: 'subjectAltName',
            altNames: [
              { type: 2, value: 'localhost' },
              { type: 7, ip: '127.0.0.1' },
              { type: 7, ip: '::1' },
            ],
          },
        ],
      },
      (err, pems) => (err ? reject(err) : resolvePem({ cert: pems.cert, key: pems.private })),
    );
  });
}
