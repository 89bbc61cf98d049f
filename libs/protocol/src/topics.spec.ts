import {
  ACCOUNT_NAME_PATTERN,
  CLIENT_ID_PATTERN,
  CloudSubscriptions,
  GATEWAY_APP_ID,
  TopicLevelError,
  Topics,
  VpnCommand,
  deviceCommandSubscription,
  deviceMayPublish,
  deviceMaySubscribe,
  parseTopic,
} from './topics';

describe('topics', () => {
  describe('patterns', () => {
    it.each(['acme', 'a1', '0-9', 'acme-eu', 'a'.repeat(63)])('should accept account name %j', (name) => {
      expect(ACCOUNT_NAME_PATTERN.test(name)).toBe(true);
    });

    it.each([
      'a',
      '-acme',
      'Acme',
      'acme_eu',
      'acme.eu',
      'a'.repeat(64),
      '',
      'ac/me',
      'ac+',
      '$edc',
      'acme\n',
    ])('should reject account name %j', (name) => {
      expect(ACCOUNT_NAME_PATTERN.test(name)).toBe(false);
    });

    it.each(['d', 'Dev_1.a-b', '.', 'x'.repeat(64)])('should accept client id %j', (id) => {
      expect(CLIENT_ID_PATTERN.test(id)).toBe(true);
    });

    it.each(['', 'x'.repeat(65), 'a/b', '+', '#', 'a b', 'a\u0000', 'dév', 'a\n'])(
      'should reject client id %j',
      (id) => {
        expect(CLIENT_ID_PATTERN.test(id)).toBe(false);
      },
    );
  });

  describe('builders', () => {
    it('should build the lifecycle topics', () => {
      expect(Topics.birth('acme', 'dev-1')).toBe('$EDC/acme/dev-1/MQTT/BIRTH');
      expect(Topics.disconnect('acme', 'dev-1')).toBe('$EDC/acme/dev-1/MQTT/DC');
      expect(Topics.lwt('acme', 'dev-1')).toBe('$EDC/acme/dev-1/MQTT/LWT');
    });

    it('should build command topics with EXEC for changes and GET for status', () => {
      expect(Topics.command('acme', 'dev-1', 'connect')).toBe('$EDC/acme/dev-1/VPNCLIENT-V2/EXEC/connect');
      expect(Topics.command('acme', 'dev-1', 'disconnect')).toBe(
        '$EDC/acme/dev-1/VPNCLIENT-V2/EXEC/disconnect',
      );
      expect(Topics.command('acme', 'dev-1', 'status')).toBe('$EDC/acme/dev-1/VPNCLIENT-V2/GET/status');
    });

    it('should build the reply and status topics', () => {
      expect(Topics.reply('acme', 'cloud-api-1', 'a6b1c9e2-0d4f-4d2a-9a53-3f1c2b7d8e90')).toBe(
        '$EDC/acme/cloud-api-1/VPNCLIENT-V2/REPLY/a6b1c9e2-0d4f-4d2a-9a53-3f1c2b7d8e90',
      );
      expect(Topics.status('acme', 'dev-1')).toBe('acme/dev-1/VPNCLIENT-V2/status');
    });

    it('should build the cloud subscriptions', () => {
      expect(CloudSubscriptions.lifecycle).toBe('$EDC/+/+/MQTT/+');
      expect(CloudSubscriptions.status).toBe('+/+/VPNCLIENT-V2/status');
      expect(CloudSubscriptions.replies('cloud-api-1')).toBe('$EDC/+/cloud-api-1/VPNCLIENT-V2/REPLY/+');
      expect(CloudSubscriptions.shared('api', CloudSubscriptions.status)).toBe(
        '$share/api/+/+/VPNCLIENT-V2/status',
      );
    });

    it('should build the device command subscription', () => {
      expect(deviceCommandSubscription('acme', 'dev-1')).toBe('$EDC/acme/dev-1/VPNCLIENT-V2/#');
    });

    it.each<[string, () => string]>([
      ['an account with a slash', () => Topics.birth('ac/me', 'dev-1')],
      ['a wildcard client id', () => Topics.status('acme', '+')],
      ['a multi-level wildcard client id', () => Topics.lwt('acme', '#')],
      ['an empty client id', () => Topics.disconnect('acme', '')],
      ['an undefined account', () => Topics.birth(undefined as unknown as string, 'dev-1')],
      ['an unknown command', () => Topics.command('acme', 'dev-1', 'reboot' as VpnCommand)],
      ['an inherited property as command', () => Topics.command('acme', 'dev-1', 'toString' as VpnCommand)],
      ['a request id with a slash', () => Topics.reply('acme', 'cloud', 'a/b')],
      ['a wildcard requester', () => CloudSubscriptions.replies('+')],
      ['a share group with a slash', () => CloudSubscriptions.shared('a/b', '#')],
      ['an empty share group', () => CloudSubscriptions.shared('', '#')],
      ['a wildcard share group', () => CloudSubscriptions.shared('+', '#')],
      ['an unsafe device subscription', () => deviceCommandSubscription('acme', 'dev/1')],
    ])('should throw TopicLevelError for %s', (_title, build) => {
      expect(build).toThrow(TopicLevelError);
    });
  });

  describe('parseTopic', () => {
    it('should parse every topic the builders make', () => {
      expect(parseTopic(Topics.birth('acme', 'dev-1'))).toEqual({
        kind: 'birth',
        account: 'acme',
        clientId: 'dev-1',
      });
      expect(parseTopic(Topics.disconnect('acme', 'dev-1'))).toEqual({
        kind: 'dc',
        account: 'acme',
        clientId: 'dev-1',
      });
      expect(parseTopic(Topics.lwt('acme', 'dev-1'))).toEqual({
        kind: 'lwt',
        account: 'acme',
        clientId: 'dev-1',
      });
      for (const command of ['connect', 'disconnect', 'status'] as const) {
        expect(parseTopic(Topics.command('acme', 'dev-1', command))).toEqual({
          kind: 'command',
          account: 'acme',
          clientId: 'dev-1',
          command,
        });
      }
      expect(parseTopic(Topics.reply('acme', 'cloud-1', 'req-1'))).toEqual({
        kind: 'reply',
        app: 'VPNCLIENT-V2',
        account: 'acme',
        requesterClientId: 'cloud-1',
        requestId: 'req-1',
      });
      expect(parseTopic(Topics.reply('acme', 'cloud-1', 'req-1', GATEWAY_APP_ID))).toEqual({
        kind: 'reply',
        app: 'VPNGATEWAY-V1',
        account: 'acme',
        requesterClientId: 'cloud-1',
        requestId: 'req-1',
      });
      expect(parseTopic(Topics.status('acme', 'dev-1'))).toEqual({
        kind: 'status',
        account: 'acme',
        clientId: 'dev-1',
      });
      for (const command of ['sync', 'apply'] as const) {
        expect(parseTopic(Topics.gatewayCommand('acme', 'gw-1', command))).toEqual({
          kind: 'gateway-command',
          account: 'acme',
          clientId: 'gw-1',
          command,
        });
      }
      expect(parseTopic(Topics.gatewayPeers('acme', 'gw-1'))).toEqual({
        kind: 'gateway-peers',
        account: 'acme',
        clientId: 'gw-1',
      });
    });

    it.each([
      '$EDC/acme/gw-1/VPNGATEWAY-V1/GET/sync',
      '$EDC/acme/gw-1/VPNGATEWAY-V1/EXEC/connect',
      '$EDC/acme/gw-1/VPNGATEWAY-V1/EXEC/sync/extra',
      'acme/gw-1/VPNGATEWAY-V1/status',
      'acme/gw-1/VPNCLIENT-V2/peers',
      '$EDC/acme/gw-1/OTHER-V1/REPLY/req-1',
    ])('should not parse %j as a protocol topic', (topic) => {
      expect(parseTopic(topic)).toBeNull();
    });

    it('should let a gateway publish replies of its own application only', () => {
      expect(
        deviceMayPublish('acme', 'gw-1', '$EDC/acme/cloud-1/VPNGATEWAY-V1/REPLY/r1', GATEWAY_APP_ID),
      ).toBe(true);
      expect(
        deviceMayPublish('acme', 'gw-1', '$EDC/acme/cloud-1/VPNCLIENT-V2/REPLY/r1', GATEWAY_APP_ID),
      ).toBe(false);
      expect(deviceMayPublish('acme', 'dev-1', '$EDC/acme/cloud-1/VPNGATEWAY-V1/REPLY/r1')).toBe(false);
      expect(deviceMayPublish('acme', 'gw-1', 'acme/gw-1/VPNGATEWAY-V1/peers', GATEWAY_APP_ID)).toBe(true);
      expect(deviceMayPublish('acme', 'gw-1', 'other/gw-1/VPNGATEWAY-V1/peers', GATEWAY_APP_ID)).toBe(false);
    });

    it.each([
      '',
      '$EDC',
      '$EDC/acme',
      '$EDC/acme/dev-1',
      '$EDC/acme/dev-1/MQTT',
      '$EDC/acme/dev-1/MQTT/BIRTH/extra',
      '$EDC/acme/dev-1/MQTT/birth',
      '$EDC/acme/dev-1/MQTT/APPS',
      '$EDC/acme/dev-1/MQTT/constructor',
      '$edc/acme/dev-1/MQTT/BIRTH',
      '$EDC/Acme/dev-1/MQTT/BIRTH',
      '$EDC/acme/dev 1/MQTT/BIRTH',
      '$EDC/acme//MQTT/BIRTH',
      '$EDC/acme/+/MQTT/BIRTH',
      '$EDC/acme/dev-1/VPNCLIENT-V2/EXEC/status',
      '$EDC/acme/dev-1/VPNCLIENT-V2/GET/connect',
      '$EDC/acme/dev-1/VPNCLIENT-V2/PUT/connect',
      '$EDC/acme/dev-1/VPNCLIENT-V2/EXEC/reboot',
      '$EDC/acme/dev-1/VPNCLIENT-V2/EXEC/connect/now',
      '$EDC/acme/dev-1/VPNCLIENT-V1/EXEC/connect',
      '$EDC/acme/dev-1/VPNCLIENT-V2/REPLY',
      '$EDC/acme/dev-1/VPNCLIENT-V2/REPLY/',
      '$EDC/acme/dev-1/VPNCLIENT-V2/REPLY/a/b',
      '$EDC/acme/dev-1/VPNCLIENT-V2/REPLY/a b',
      'acme/dev-1/VPNCLIENT-V2/status/x',
      'acme/dev-1/VPNCLIENT-V2/STATUS',
      'acme/dev-1/CLOUD-V1/status',
      'ACME/dev-1/VPNCLIENT-V2/status',
      '$share/g/acme/dev-1/VPNCLIENT-V2/status',
      'acme/dev-1/VPNCLIENT-V2',
      '/acme/dev-1/VPNCLIENT-V2/status',
    ])('should return null for %j', (topic) => {
      expect(parseTopic(topic)).toBeNull();
    });
  });

  describe('deviceMayPublish', () => {
    const may = (topic: string): boolean => deviceMayPublish('acme', 'dev-1', topic);

    it.each([
      '$EDC/acme/dev-1/MQTT/BIRTH',
      '$EDC/acme/dev-1/MQTT/DC',
      '$EDC/acme/dev-1/anything/deeper/still',
      'acme/dev-1/VPNCLIENT-V2/status',
      'acme/dev-1/telemetry',
      '$EDC/acme/cloud-api-1/VPNCLIENT-V2/REPLY/req-1',
      '$EDC/acme/cloud-api-1/VPNCLIENT-V2/REPLY/req-1/part',
    ])('should allow %j', (topic) => {
      expect(may(topic)).toBe(true);
    });

    it.each([
      ['another device of the account', '$EDC/acme/dev-2/MQTT/BIRTH'],
      ['another account', '$EDC/other/dev-1/MQTT/BIRTH'],
      ['an account the own name is a prefix of', '$EDC/acme-eu/dev-1/MQTT/BIRTH'],
      ['a client id the own id is a prefix of', '$EDC/acme/dev-10/MQTT/BIRTH'],
      ['a data topic of an account with a longer name', 'acme-eu/dev-1/telemetry'],
      ['a data topic of another device', 'acme/dev-2/VPNCLIENT-V2/status'],
      ['the bare control namespace', '$EDC/acme/dev-1'],
      ['the bare data namespace', 'acme/dev-1'],
      ['a trailing empty level', '$EDC/acme/dev-1/'],
      ['an empty level', '$EDC/acme/dev-1//BIRTH'],
      ['a leading slash', '/acme/dev-1/telemetry'],
      ['a single-level wildcard', '$EDC/acme/dev-1/+'],
      ['a multi-level wildcard', 'acme/dev-1/#'],
      ['a wildcard inside a level', 'acme/dev-1/a+b'],
      ['the whole-tree wildcard', '#'],
      ['a shared subscription name', '$share/g/acme/dev-1/x'],
      ['a system topic', '$SYS/broker/clients'],
      ['a NUL character', 'acme/dev-1/a\u0000b'],
      ['a control character', 'acme/dev-1/a\u0007b'],
      ['a C1 control character', 'acme/dev-1/a\u0085b'],
      ['a command to another device', '$EDC/acme/dev-2/VPNCLIENT-V2/EXEC/connect'],
      ['a reply without request id', '$EDC/acme/cloud-api-1/VPNCLIENT-V2/REPLY'],
      ['a reply of another app', '$EDC/acme/cloud-api-1/CLOUD-V1/REPLY/req-1'],
      ['a reply into another account', '$EDC/other/cloud-api-1/VPNCLIENT-V2/REPLY/req-1'],
      ['a wildcard reply requester', '$EDC/acme/+/VPNCLIENT-V2/REPLY/req-1'],
      ['a lower-case control prefix', '$edc/acme/dev-1/MQTT/BIRTH'],
      ['the empty topic', ''],
    ])('should deny %s', (_title, topic) => {
      expect(may(topic)).toBe(false);
    });

    it('should deny everything to a device whose own ids are not valid levels', () => {
      expect(deviceMayPublish('acme', '+', 'acme/+/x')).toBe(false);
      expect(deviceMayPublish('acme', '#', '$EDC/acme/#/x')).toBe(false);
      expect(deviceMayPublish('ac/me', 'dev-1', 'ac/me/dev-1/x')).toBe(false);
      expect(deviceMayPublish('acme', '', 'acme//x')).toBe(false);
      expect(deviceMayPublish(undefined as unknown as string, 'dev-1', 'undefined/dev-1/x')).toBe(false);
    });

    it('should deny a non-string topic', () => {
      expect(deviceMayPublish('acme', 'dev-1', undefined as unknown as string)).toBe(false);
    });
  });

  describe('deviceMaySubscribe', () => {
    const may = (filter: string): boolean => deviceMaySubscribe('acme', 'dev-1', filter);

    it.each([
      '$EDC/acme/dev-1/#',
      '$EDC/acme/dev-1/VPNCLIENT-V2/#',
      '$EDC/acme/dev-1/VPNCLIENT-V2/EXEC/connect',
      '$EDC/acme/dev-1/+/EXEC/+',
      '$EDC/acme/dev-1/+',
    ])('should allow %j', (filter) => {
      expect(may(filter)).toBe(true);
    });

    it.each([
      ['the whole tree', '#'],
      ['every account', '$EDC/#'],
      ['the own account', '$EDC/acme/#'],
      ['every device of the account', '$EDC/acme/+/#'],
      ['the bare namespace', '$EDC/acme/dev-1'],
      ['a wildcard account', '$EDC/+/dev-1/#'],
      ['another device', '$EDC/acme/dev-2/#'],
      ['a device the own id is a prefix of', '$EDC/acme/dev-10/#'],
      ['an account the own name is a prefix of', '$EDC/acme-eu/dev-1/#'],
      ['a wildcard control prefix', '+/acme/dev-1/#'],
      ['the own data topics (publish only)', 'acme/dev-1/#'],
      ['another device status', 'acme/dev-2/VPNCLIENT-V2/status'],
      ['a shared subscription', '$share/g/$EDC/acme/dev-1/#'],
      ['a shared subscription of everything', '$share/g/#'],
      ['# not last', '$EDC/acme/dev-1/#/x'],
      ['# inside a level', '$EDC/acme/dev-1/a#'],
      ['+ inside a level', '$EDC/acme/dev-1/a+/x'],
      ['a trailing empty level', '$EDC/acme/dev-1/'],
      ['an empty level', '$EDC/acme/dev-1//x'],
      ['a NUL character', '$EDC/acme/dev-1/\u0000'],
      ['a control character in the own level', '$EDC/acme/dev-1\u0001/#'],
      ['the empty filter', ''],
    ])('should deny %s', (_title, filter) => {
      expect(may(filter)).toBe(false);
    });

    it('should deny everything to a device whose own ids are wildcards', () => {
      expect(deviceMaySubscribe('acme', '+', '$EDC/acme/+/#')).toBe(false);
      expect(deviceMaySubscribe('acme', '#', '$EDC/acme/#/x')).toBe(false);
      expect(deviceMaySubscribe('+', 'dev-1', '$EDC/+/dev-1/#')).toBe(false);
    });

    it('should deny a non-string filter', () => {
      expect(deviceMaySubscribe('acme', 'dev-1', null as unknown as string)).toBe(false);
    });
  });
});
