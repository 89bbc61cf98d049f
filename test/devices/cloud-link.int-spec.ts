import type { MqttClient } from 'mqtt';
import { CloudSubscriptions, deviceCommandSubscription, StatusCodes, Topics } from '@app/protocol';
import { CloudMqttClient } from '../../apps/api/src/mqtt/cloud-mqtt.client';
import { eventually } from '../support/eventually';
import {
  connectDevice,
  createDevice,
  endAll,
  issueCredentials,
  publishBirth,
  publishStatus,
  recordMessages,
  subscribeGranted,
} from '../support/device-factories';
import { createTenant } from '../support/factories';
import { login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';

// With the embedded broker the cloud's client is linked to it inside the process (no MQTT
// connection of its own): what it subscribes, unsubscribes and publishes must behave as over MQTT.
describe('the cloud linked in process to the embedded broker', () => {
  let api: TestApi;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    api = await startTestApi({}, { embeddedBroker: true });
  });

  afterAll(async () => {
    await endAll(...clients);
    await api?.stop();
  });

  it('should deliver device messages to the cloud per filter, stop after unsubscribe, and publish to devices', async () => {
    const cloud = api.app.get(CloudMqttClient);
    expect(cloud.connected).toBe(true);
    const tenant = await createTenant(api, await login(api));
    const device = await createDevice(api, tenant.admin.token);
    const creds = await issueCredentials(api, tenant.admin.token, '_', device.id);
    const client = await connectDevice(api, creds);
    clients.push(client);
    const seen: string[] = [];
    cloud.onMessage((topic) => seen.push(topic));
    // A listener that throws does not keep the message from the others.
    cloud.onMessage(() => {
      throw new Error('a failing listener');
    });
    const statusTopic = Topics.status(creds.account, creds.clientId);
    const birthTopic = Topics.birth(creds.account, creds.clientId);
    const report = (seq: number) => ({
      connected: false,
      ipAddress: '0.0.0.0',
      status: 'idle' as const,
      statusCode: StatusCodes.NOT_APPLICABLE,
      bootId: 'link-boot',
      seq,
    });

    await publishStatus(client, creds.account, creds.clientId, report(1));
    await eventually(() => expect(seen).toContain(statusTopic));

    // Unsubscribed: a status report is no longer delivered, a BIRTH (another filter) still is, and
    // the broker keeps the order of one publisher's messages, so the BIRTH arriving proves it.
    await cloud.unsubscribe(CloudSubscriptions.status);
    seen.length = 0;
    await publishStatus(client, creds.account, creds.clientId, report(2));
    await publishBirth(client, creds.account, creds.clientId, {});
    await eventually(() => expect(seen).toContain(birthTopic));
    expect(seen).not.toContain(statusTopic);

    await cloud.subscribe(CloudSubscriptions.status);
    await publishStatus(client, creds.account, creds.clientId, report(3));
    await eventually(() => expect(seen).toContain(statusTopic));

    // The cloud's publish reaches the device that subscribed to its commands.
    const received = recordMessages(client);
    expect(
      await subscribeGranted(client, [deviceCommandSubscription(creds.account, creds.clientId)]),
    ).toEqual([1]);
    const command = Topics.command(creds.account, creds.clientId, 'connect');
    await cloud.publish(command, Buffer.from('request'));
    await eventually(() => expect(received.map((m) => m.topic)).toEqual([command]));
    expect(received[0].payload.toString()).toBe('request');
  });
});
