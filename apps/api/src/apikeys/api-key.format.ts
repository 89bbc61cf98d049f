/**
 * API keys read `vpk_<key id, 32 hex>_<secret>`: the id finds the row, the
 * secret is checked against its digest. The prefix makes leaked keys easy to grep for.
 */
const PATTERN = /^vpk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export function formatApiKey(id: string, secret: string): string {
  return `vpk_${id.replace(/-/g, '')}_${secret}`;
}

export function parseApiKey(apiKey: string): { id: string; secret: string } | null {
  const m = PATTERN.exec(apiKey);
  if (!m) return null;
  const h = m[1];
  const id = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  return { id, secret: m[2] };
}
