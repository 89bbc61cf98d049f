'use strict';
// Command round trip: POST …/vpn/_connect or _disconnect → MQTT → a simulated agent that answers at once
// (vpn-agent simulate, connect delay 0) → reply → HTTP response; 50 concurrent over many devices.
// Ceiling: a raw MQTT.js request/reply ping-pong through the same broker.
const { startFleet } = require('../lib/stack');
const { waitConnected } = require('../lib/measure');
const { commandRoundTrip } = require('../lib/command');

module.exports = {
  id: 'command-rtt',
  title: 'Command round trip',
  timeoutMs: (ctx) => ctx.opts.rounds * 4 * (ctx.opts.warmupMs + ctx.opts.durationMs + 30_000) + 120_000,
  async run(ctx) {
    const devices = ctx.devices.slice(0, ctx.opts.commandDevices);
    const fleet = await startFleet(ctx, { name: 'agents-command', brokerUrl: ctx.api.brokerUrl, devices });
    try {
      const up = await waitConnected(
        ctx,
        devices.map((d) => d.id),
        60_000,
      );
      if (up.connected < devices.length) {
        throw new Error(`only ${up.connected} of ${devices.length} agents are CONNECTED for the API`);
      }
      const r = await commandRoundTrip(ctx, { devices, label: 'command round trip' });
      const serial = await commandRoundTrip(ctx, {
        devices,
        label: 'command round trip, one at a time',
        concurrency: 1,
      });
      return {
        rows: [
          {
            scenario: `Command round trip (_connect/_disconnect, 50 conc., ${devices.length} agents)`,
            ...r.row,
          },
          {
            scenario: `Command round trip, one at a time (unloaded latency, ${devices.length} agents)`,
            ...serial.row,
          },
        ],
        details: { fleet: fleet.summary, ...r.details, serial: serial.details },
      };
    } finally {
      await fleet.stop('SIGTERM', 30_000);
    }
  },
};
