import { chromium, type Browser } from 'playwright-core';
import { startTestApi, type TestApi } from '../support/test-api';
import { expectNothingFor } from '../support/eventually';
import { describeWhen } from '../support/prerequisites';

const CHROMIUM = '/usr/bin/chromium';

/**
 * Swagger UI at /docs must still render under the security headers (its own, looser CSP), with
 * no policy violation in the browser. Needs /usr/bin/chromium (CI installs it): skipped without, a
 * failure in CI.
 */
describeWhen('Swagger UI browser test', { tools: [CHROMIUM] })(
  'Swagger UI under the security headers',
  () => {
    let api: TestApi;
    let browser: Browser;

    beforeAll(async () => {
      api = await startTestApi();
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    });

    afterAll(async () => {
      await browser?.close();
      await api?.stop();
    });

    it.each(['/docs', '/docs/'])(
      'should render the API title and its operations at %s without CSP violations',
      async (path) => {
        const page = await browser.newPage();
        const violations: string[] = [];
        page.on('console', (msg) => {
          if (/Content Security Policy|Refused to/i.test(msg.text())) violations.push(msg.text());
        });
        await page.goto(`${api.url}${path}`);
        await page.waitForSelector('.swagger-ui .info .title', { timeout: 20_000 });
        expect(await page.textContent('.swagger-ui .info .title')).toContain('Device VPN Cloud API');
        await page.waitForSelector('.opblock', { timeout: 20_000 });
        expect(await page.locator('.opblock').count()).toBeGreaterThan(10);
        expect(violations).toEqual([]);
        await page.close();
      },
    );

    it('should refuse to be framed by another page', async () => {
      const page = await browser.newPage();
      const blocked: string[] = [];
      page.on('console', (msg) => {
        if (/frame-ancestors|Refused to display/i.test(msg.text())) blocked.push(msg.text());
      });
      await page.setContent(`<iframe src="${api.url}/docs"></iframe>`);
      await expectNothingFor(1000, 'an allowed frame of this page renders well within a second');
      const frame = page.frames().find((f) => f.url().startsWith(api.url));
      const rendered = frame ? await frame.$('.swagger-ui').catch(() => null) : null;
      expect(rendered).toBeNull();
      await page.close();
    });
  },
);
