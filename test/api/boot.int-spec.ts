import request from 'supertest';
import { startTestApi, type TestApi } from '../support/test-api';

describe('API boot (real Postgres, real broker)', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await startTestApi();
  });

  afterAll(async () => {
    await api?.stop();
  });

  it('should report live and ready with the database and MQTT up', async () => {
    await request(api.url).get('/health/live').expect(200, { status: 'ok' });
    await request(api.url).get('/health/ready').expect(200, { status: 'ok', database: 'up', mqtt: 'up' });
  });

  it('should return a request id header, echoing a well-formed one', async () => {
    const res = await request(api.url).get('/health/live').set('X-Request-Id', 'req-123').expect(200);
    expect(res.headers['x-request-id']).toBe('req-123');
    const generated = await request(api.url).get('/health/live').set('X-Request-Id', 'bad id!').expect(200);
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
