import request from 'supertest';
import { startTestApi, type TestApi } from '../support/test-api';

/**
 * Swagger UI's page loads its scripts and styles by relative URLs (`./swagger-ui-bundle.js`):
 * opened as `/docs/` they resolve under `/docs/…`, which must serve them too, or the page stays
 * blank. Checked without a browser: every asset the page names, resolved as a browser would,
 * answers 200 with its own content type (not the HTML page).
 */
describe('Swagger UI opened with and without a trailing slash', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await startTestApi();
  });

  afterAll(() => api?.stop());

  it.each(['/docs', '/docs/'])('should serve every asset the page at %s loads', async (path) => {
    const page = await request(api.url).get(path).redirects(2);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const base = new URL(page.redirects.at(-1) ?? `${api.url}${path}`);
    const refs = [...page.text.matchAll(/<(?:script|link)[^>]+(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThanOrEqual(3);
    for (const ref of refs) {
      const url = new URL(ref, base);
      const asset = await request(url.origin).get(url.pathname);
      expect({ ref, url: url.pathname, status: asset.status }).toEqual({
        ref,
        url: url.pathname,
        status: 200,
      });
      expect(asset.headers['content-type']).not.toMatch(/text\/html/);
    }
  });
});
