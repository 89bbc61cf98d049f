'use strict';
// Fleet size: N simulated agents (10,000 in full mode) connected at once, to the embedded broker
// (aedes inside the API process) and to Mosquitto: time to connect, memory per device on the
// broker side, the cloud side and the agent side, and the command round trip with the whole fleet
// connected (against the raw MQTT ping-pong through the same broker, fleet connected too).
const { startApi, stopApi, startFleet } = require('../lib/stack');
const { sleep, waitConnected } = require('../lib/measure');
const { commandRoundTrip } = require('../lib/command');
const { rssKiB } = require('../lib/system');

const perDevice = (before, after, n) =>
  before !== null && after !== null ? Math.round(((after - before) / n) * 100) / 100 : null;

function fleetScenario(broker) {
  const mosquitto = broker === 'mosquitto';
  return {
    id: `fleet-${broker}`,
    title: `Fleet size (${mosquitto ? 'Mosquitto' : 'embedded broker'})`,
    timeoutMs: (ctx) => 420_000 + ctx.opts.rounds * 4 * (ctx.opts.warmupMs + ctx.opts.durationMs + 30_000),
    async skip(ctx) {
      if (mosquitto && !ctx.mosquitto) return `no Mosquitto reachable at ${ctx.opts.mosquittoUrl}`;
      return null;
    },
    async run(ctx) {
      const devices = ctx.devices.slice(0, ctx.opts.fleetDevices);
      // A fresh API process, so the memory figures start from a known baseline.
      await stopApi(ctx.api);
      ctx.api = await startApi(ctx, {
        name: `api-${broker}`,
        mqttUrl: mosquitto ? ctx.opts.mosquittoUrl : undefined,
      });
      const brokerPid = mosquitto ? ctx.mosquitto.pid : ctx.api.pid;
      await sleep(ctx.opts.settleMs);
      const before = { api: rssKiB(ctx.api.pid), broker: rssKiB(brokerPid) };
      const started = Date.now();
      const fleet = await startFleet(ctx, {
        name: `fleet-${broker}`,
        brokerUrl: ctx.api.brokerUrl,
        devices,
        batchSize: ctx.opts.fleetBatch,
        readyTimeoutMs: 180_000,
      });
      try {
        const up = await waitConnected(
          ctx,
          devices.map((d) => d.id),
          120_000,
        );
        const connectMs = Date.now() - started;
        ctx.log(
          `  ${fleet.summary.connected}/${devices.length} agents up (${fleet.summary.elapsedMs} ms), ` +
            `${up.connected} CONNECTED in the database after ${connectMs} ms`,
        );
        await sleep(ctx.opts.settleMs);
        const after = { api: rssKiB(ctx.api.pid), broker: rssKiB(brokerPid), agents: rssKiB(fleet.pid) };
        const memory = {
          rssKiB: { before, after },
          brokerKiBPerDevice: perDevice(before.broker, after.broker, devices.length),
          apiKiBPerDevice: perDevice(before.api, after.api, devices.length),
          agentKiBPerDevice:
            after.agents !== null ? Math.round((after.agents / devices.length) * 100) / 100 : null,
          note: mosquitto
            ? 'broker = the shared Mosquitto process (other clients may come and go); api = the cloud process'
            : 'broker = api = the API process (aedes runs inside it)',
        };
        const connected = fleet.summary.connected === devices.length && up.connected === devices.length;
        const rows = [
          {
            scenario: `Fleet: ${devices.length} agents on ${mosquitto ? 'Mosquitto' : 'the embedded broker'}`,
            unit: 'devices connected',
            ours: up.connected,
            ceiling: devices.length,
            ratio: null,
            oursLatency: null,
            ceilingLatency: null,
            target: `all ${devices.length} connected`,
            met: connected,
            note:
              `up in ${(connectMs / 1000).toFixed(1)} s; broker ${fmtKiB(memory.brokerKiBPerDevice)}/device` +
              (mosquitto ? `, cloud ${fmtKiB(memory.apiKiBPerDevice)}/device` : '') +
              `, agent ${fmtKiB(memory.agentKiBPerDevice)}/device (RSS)`,
          },
        ];
        const cmd = await commandRoundTrip(ctx, {
          devices,
          label: `command round trip with ${broker} fleet`,
        });
        rows.push({
          scenario: `Command round trip with the ${devices.length}-agent fleet on ${mosquitto ? 'Mosquitto' : 'the embedded broker'}`,
          ...cmd.row,
        });
        let serialCmd = null;
        if (mosquitto) {
          // The unloaded latency through Mosquitto (command-rtt measures it on the embedded broker).
          serialCmd = await commandRoundTrip(ctx, {
            devices,
            label: 'command round trip with mosquitto fleet, one at a time',
            concurrency: 1,
          });
          rows.push({
            scenario: `Command round trip, one at a time, with the ${devices.length}-agent fleet on Mosquitto`,
            ...serialCmd.row,
          });
        }
        let resync = null;
        if (mosquitto) {
          // The resync cost: a restarted API asks every device stored CONNECTED for its status
          // (the fleet stays on Mosquitto meanwhile). At info level it logs the resync's summary.
          await stopApi(ctx.api);
          const restartedAt = Date.now();
          ctx.api = await startApi(ctx, {
            name: 'api-resync',
            mqttUrl: ctx.opts.mosquittoUrl,
            logLevel: 'info',
          });
          const line = await ctx.api.waitFor(/connection resync done/, 300_000);
          const summary = JSON.parse(line.slice(line.indexOf('{')));
          resync = { ...summary, sinceRestartMs: Date.now() - restartedAt };
          ctx.log(
            `  resync after an API restart: asked ${summary.asked}, confirmed ${summary.confirmed}, ` +
              `missing ${summary.missing} in ${summary.ms} ms`,
          );
          rows.push({
            scenario: `Resync after an API restart, ${devices.length} agents on Mosquitto`,
            unit: 'devices confirmed',
            ours: summary.confirmed,
            ceiling: devices.length,
            ratio: null,
            oursLatency: null,
            ceilingLatency: null,
            target: `all ${devices.length} confirmed`,
            met: summary.confirmed === devices.length,
            note: `${summary.ms} ms for ${summary.asked} status requests (${Math.round((summary.asked / Math.max(summary.ms, 1)) * 1000)}/s), ${summary.missing} marked MISSING`,
          });
        }
        return {
          rows,
          details: {
            resync,
            broker,
            devices: devices.length,
            fleet: fleet.summary,
            connectMs,
            dbConnected: up,
            memory,
            command: cmd.details,
            commandOneAtATime: serialCmd?.details ?? null,
          },
        };
      } finally {
        await fleet.stop('SIGTERM', 60_000);
        if (mosquitto) {
          // The next scenario (if any) gets an API on the embedded broker again (run.js).
          await stopApi(ctx.api);
          ctx.api = null;
        }
      }
    },
  };
}

function fmtKiB(v) {
  return v === null ? 'n/a' : `${v} KiB`;
}

module.exports = { fleetScenario };
