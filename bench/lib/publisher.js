'use strict';
// The MQTT status publisher shared by the event scenarios: load/mqtt-ingest.js (simulated devices
// whose every report is a change) driven one step at a time.
const path = require('node:path');
const { runForked } = require('./procs');
const { LOAD_DIR } = require('./stack');

/** Starts the MQTT status publisher (load/mqtt-ingest.js); resolves once its devices are connected. */
async function startPublisher(ctx, name, devices, limitMs) {
  let onProgress = () => undefined;
  let readyResolve;
  const ready = new Promise((r) => (readyResolve = r));
  const gen = runForked(
    name,
    path.join(LOAD_DIR, 'mqtt-ingest.js'),
    {
      distDir: ctx.distDir,
      brokerUrl: ctx.api.brokerUrl,
      account: ctx.account.name,
      creds: devices.map((d) => ({ clientId: d.clientId, username: d.username, password: d.password })),
      hardLimitMs: limitMs,
    },
    {
      timeoutMs: limitMs + 10_000,
      onMessage: (m) => (m.type === 'ready' ? readyResolve(m.data) : onProgress(m.data)),
    },
  );
  gen.result.catch(() => undefined);
  // Not ready yet but already finished (a result or an error): there are no devices to drive.
  const started = await Promise.race([ready, gen.result.then(() => null)]);
  if (started === null) throw new Error(`${name} ended before its devices were connected`);
  return {
    gen,
    /**
     * One step of `rate` reports/s for `durationMs`; resolves with the generator's step summary,
     * rejects at once when the generator ends (dies, errors, hits its hard limit) before that.
     */
    step(rate, durationMs) {
      if (!gen.proc.running)
        return Promise.reject(new Error(`${name} is not running (${gen.proc.exitCode})`));
      const done = new Promise((resolve) => {
        onProgress = (p) => p.kind === 'step-done' && resolve(p);
        gen.proc.child.send({ type: 'step', rate, durationMs });
      });
      // The generator's error (exit, hard limit, timeout) as is; a result means it stopped early.
      const ended = gen.result.then(() => {
        throw new Error(`${name} ended before its step was done`);
      });
      return Promise.race([done, ended]);
    },
    async stop() {
      if (gen.proc.running) gen.proc.child.send({ type: 'stop' });
      await gen.result.catch(() => undefined);
      await gen.proc.stop('SIGTERM', 5000);
    },
  };
}

module.exports = { startPublisher };
