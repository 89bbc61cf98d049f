// The fleet simulator against a real broker: devices come up in batches and go away cleanly.
import { randomBytes } from 'node:crypto';

import { Topics } from '@app/protocol';
import { connectAsync, MqttClient } from 'mqtt';

import { FleetSimulator } from './simulate';
import { parseFleetConfig } from './simulate-config';
import { createLogger } from '@app/edge';
import { eventually } from '../../../test/support/eventually';

const BROKER = process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const ACCOUNT = `it-fleet-${randomBytes(4).toString('hex')}`;
// MQTT client ids are global to the broker, whatever the account: parallel runs need their own.
const PREFIX = `fs${randomBytes(3).toString('hex')}-`;

jest.setTimeout(30_000);

describe('FleetSimulator', () => {
  let cloud: MqttClient;
  const topics: string[] = [];

  beforeAll(async () => {
    cloud = await connectAsync(BROKER, { clean: true, protocolVersion: 4 });
    cloud.on('message', (topic) => topics.push(topic));
    await cloud.subscribeAsync(`$EDC/${ACCOUNT}/+/MQTT/+`, { qos: 1 });
  });

  afterAll(async () => {
    await cloud.endAsync();
  });

  it('should bring N devices up in batches, each with a BIRTH, and stop them all with DC', async () => {
    const config = parseFleetConfig(
      [
        '--broker',
        BROKER,
        '--account',
        ACCOUNT,
        '--count',
        '25',
        '--batch-size',
        '10',
        '--client-id-prefix',
        PREFIX,
      ],
      {},
    );
    const fleet = new FleetSimulator(config, createLogger('silent'));
    const summary = await fleet.run();
    expect(summary).toMatchObject({ count: 25, connected: 25, notConnected: 0 });
    await eventually(() => expect(topics.filter((t) => t.endsWith('/BIRTH'))).toHaveLength(25));
    expect(topics).toContain(Topics.birth(ACCOUNT, `${PREFIX}00024`));

    await fleet.stop();
    await eventually(() => expect(topics.filter((t) => t.endsWith('/DC'))).toHaveLength(25));
    expect(topics.filter((t) => t.endsWith('/LWT'))).toHaveLength(0);
  });
});
