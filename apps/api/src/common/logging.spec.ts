import { Writable } from 'node:stream';
import type { NextFunction, Request, Response } from 'express';
import { EventEmitter } from 'node:events';
import { createRootLogger, PinoNestLogger, requestLogger } from './logging';

/** A root logger at `level` whose lines are collected as parsed JSON. */
function capture(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: createRootLogger(level, sink), lines };
}

/** Runs the request logger on a fake request; `next` is what the route does while it is served. */
function serve(logger: ReturnType<typeof createRootLogger>, next: () => void, requestId?: string) {
  const req = { headers: requestId ? { 'x-request-id': requestId } : {}, method: 'GET', path: '/x' };
  const res = Object.assign(new EventEmitter(), { statusCode: 200, setHeader: jest.fn() });
  requestLogger(logger)(req as unknown as Request, res as unknown as Response, next as NextFunction);
  return res;
}

describe('logging', () => {
  it('should put the request id on every line written while the request is served, also after awaits', async () => {
    const { logger, lines } = capture('info');
    const nest = new PinoNestLogger(logger);
    let served!: Promise<void>;
    const res = serve(
      logger,
      () => {
        served = (async () => {
          logger.info('in the guard');
          await new Promise((resolve) => setImmediate(resolve));
          nest.warn('in a service', 'SomeService');
        })();
      },
      'req-42',
    );
    await served;
    res.emit('finish');
    logger.info('after the request');
    expect(lines.map((l) => [l.msg, l.reqId])).toEqual([
      ['in the guard', 'req-42'],
      ['in a service', 'req-42'],
      ['request', 'req-42'],
      ['after the request', undefined],
    ]);
    // The id appears once per line, not twice.
    expect(lines.every((l) => Object.keys(l).filter((k) => k === 'reqId').length <= 1)).toBe(true);
  });

  it("should keep two concurrent requests' ids apart", async () => {
    const { logger, lines } = capture('info');
    const work: Array<Promise<void>> = [];
    for (const id of ['a-1', 'b-2']) {
      serve(
        logger,
        () =>
          work.push(
            (async () => {
              await new Promise((resolve) => setImmediate(resolve));
              logger.info({ mine: id }, 'working');
            })(),
          ),
        id,
      );
    }
    await Promise.all(work);
    expect(lines.map((l) => [l.mine, l.reqId])).toEqual([
      ['a-1', 'a-1'],
      ['b-2', 'b-2'],
    ]);
  });

  it("should log Nest's module and route mapping lines at debug, and other info lines at info", () => {
    const atInfo = capture('info');
    const nest = new PinoNestLogger(atInfo.logger);
    nest.log('Mapped {/v1/_/devices, GET} route', 'RouterExplorer');
    nest.log('DevicesController {/v1/:scopeId/devices}:', 'RoutesResolver');
    nest.log('AppModule dependencies initialized', 'InstanceLoader');
    nest.log('cloud subscribed; devices and gateways admitted', 'EmbeddedBroker');
    expect(atInfo.lines.map((l) => l.msg)).toEqual(['cloud subscribed; devices and gateways admitted']);

    const atDebug = capture('debug');
    new PinoNestLogger(atDebug.logger).log('Mapped {/v1/_/devices, GET} route', 'RouterExplorer');
    expect(atDebug.lines).toEqual([
      expect.objectContaining({
        level: 20,
        context: 'RouterExplorer',
        msg: 'Mapped {/v1/_/devices, GET} route',
      }),
    ]);
  });

  it('should redact credentials in logged objects', () => {
    const { logger, lines } = capture('info');
    logger.info({ password: 'p', body: { token: 't', apiKey: 'k' } }, 'login');
    expect(lines[0]).toMatchObject({
      password: '[redacted]',
      body: { token: '[redacted]', apiKey: '[redacted]' },
    });
  });
});
