import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import {
  ACCOUNT_NAME_PATTERN,
  CLIENT_ID_PATTERN,
  CloudSubscriptions,
  edgeAclFilters,
  GATEWAY_APP_ID,
  KeyedSerialQueue,
  VPN_APP_ID,
} from '@app/protocol';
import { AppError } from '../../common/app-error';
import { APP_CONFIG, ConfigError, type AppConfig } from '../../config/app-config';
import { BrokerCredentials, type CredentialChange } from '../broker-credentials';
import { CloudMqttClient } from '../cloud-mqtt.client';
import { ConnectionEvents } from '../connection-events';
import { EdgeCredentials } from '../edge-credentials';
import { DynsecControl, type DynsecCommand, type DynsecResponse } from './dynsec-control';

/** The role that gives the cloud's own client the device protocol's topics. */
export const CLOUD_ROLE = 'vpn-cloud';
/** Each edge client's role is this prefix plus its username. */
export const EDGE_ROLE_PREFIX = 'vpn-edge:';
/** How often a change is tried before the REST call fails, and the first pause between tries. */
const ATTEMPTS = 3;
const FIRST_BACKOFF_MS = 250;
/** How long start-up waits for the broker to accept the cloud's client. */
const CONNECT_TIMEOUT_MS = 15_000;

/** `{account}:{clientId}`: the usernames of the clients this service manages in dynsec. */
export function isEdgeUsername(username: string): boolean {
  const i = username.indexOf(':');
  return (
    i > 0 && ACCOUNT_NAME_PATTERN.test(username.slice(0, i)) && CLIENT_ID_PATTERN.test(username.slice(i + 1))
  );
}

export const edgeRole = (username: string): string => `${EDGE_ROLE_PREFIX}${username}`;

/** Errors that mean "already as wanted": deleting what is gone, (dis/en)abling what is gone. */
const EXPECTED_ERRORS: Readonly<Record<string, string>> = {
  deleteClient: 'Client not found',
  deleteRole: 'Role not found',
  disableClient: 'Client not found',
  enableClient: 'Client not found',
};

const failed = (r: DynsecResponse): boolean =>
  r.error !== undefined && EXPECTED_ERRORS[r.command] !== r.error;

interface ListedClient {
  username: string;
  disabled?: boolean;
}

/**
 * Keeps Mosquitto's dynamic-security plugin in step with the credentials the database holds
 * (MQTT_BROKER_KIND=mosquitto-dynsec, docs/brokers.md): one dynsec client per device or gateway,
 * with its MQTT client id pinned to `{account}:{clientId}` and one role holding exactly its ACL
 * (Mosquitto 2.0 has no `%c` in ACLs). A start gives the cloud's own client its topics and
 * reconciles the broker with the database by difference.
 */
@Injectable()
export class MosquittoDynsecBroker implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger('MosquittoDynsec');
  private readonly serial = new KeyedSerialQueue();
  /** Usernames of devices and gateways that hold credentials the broker lacks (found at start). */
  missingCredentials: string[] = [];

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly control: DynsecControl,
    private readonly mqtt: CloudMqttClient,
    private readonly edge: EdgeCredentials,
    private readonly connections: ConnectionEvents,
    credentials: BrokerCredentials,
  ) {
    if (this.enabled) credentials.onChange((change) => this.apply(change));
  }

  get enabled(): boolean {
    return this.config.mqttBrokerKind === 'mosquitto-dynsec';
  }

  async onModuleInit(): Promise<void> {
    if (this.enabled) await this.control.listen();
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.mqtt.whenConnected(CONNECT_TIMEOUT_MS);
    } catch (err) {
      throw new ConfigError(
        'MQTT_USERNAME',
        `and MQTT_PASSWORD must be a dynsec client holding the admin role on the broker at MQTT_URL ` +
          `(MQTT_BROKER_KIND=mosquitto-dynsec): ${(err as Error).message}`,
      );
    }
    try {
      await this.grantCloudRole();
    } catch (err) {
      throw new ConfigError(
        'MQTT_BROKER_KIND',
        `=mosquitto-dynsec: ${(err as Error).message}; the broker at MQTT_URL must load the ` +
          'dynamic-security plugin and MQTT_USERNAME must hold its admin role (docs/brokers.md)',
      );
    }
    await this.reconcile();
  }

  /** Carries one credential change into dynsec; retried, then reported as SERVICE_UNAVAILABLE. */
  private apply(change: CredentialChange): Promise<void> {
    const username = `${change.account}:${change.clientId}`;
    return this.serial.run(username, async () => {
      const commands = await this.commandsFor(change, username);
      let lastError = '';
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        try {
          const responses = await this.control.run(commands);
          const bad = responses.filter(failed);
          if (bad.length === 0) return await this.cut(change);
          lastError = bad.map((r) => `${r.command}: ${r.error}`).join('; ');
        } catch (err) {
          lastError = (err as Error).message;
        }
        this.logger.warn(
          { username, change: change.type, attempt, error: lastError },
          'dynsec did not take a credential change',
        );
        if (attempt < ATTEMPTS)
          await new Promise((r) => setTimeout(r, FIRST_BACKOFF_MS * 2 ** (attempt - 1)));
      }
      this.logger.error(
        { username, change: change.type, error: lastError },
        'dynsec did not take a credential change; the next start reconciles what it can (docs/brokers.md)',
      );
      throw new AppError(
        'SERVICE_UNAVAILABLE',
        'The MQTT broker did not take the credential change',
        `Mosquitto dynamic security: ${lastError}. The database holds the change; retry the request`,
      );
    });
  }

  /**
   * Deleting or disabling a dynsec client kicks its live session without publishing its will, so
   * no LWT tells the cloud: the domain records it as the LWT would have (a CONNECTED device or
   * gateway becomes MISSING). A deleted one is gone from the database already.
   */
  private async cut(change: CredentialChange): Promise<void> {
    if (change.type !== 'issued' && change.type !== 'disabled') return;
    const { kind, id, account, clientId } = change;
    await this.connections
      .sessionCut({ kind, id, account, clientId })
      .catch((err: unknown) =>
        this.logger.warn(
          { username: `${account}:${clientId}`, err: (err as Error).message },
          'could not record the session the broker cut; the device shows its old connection status until its next lifecycle message',
        ),
      );
  }

  private async commandsFor(change: CredentialChange, username: string): Promise<DynsecCommand[]> {
    const rolename = edgeRole(username);
    const remove: DynsecCommand[] = [
      { command: 'deleteClient', username },
      { command: 'deleteRole', rolename },
    ];
    switch (change.type) {
      case 'deleted':
        return remove;
      case 'disabled':
        return [{ command: 'disableClient', username }];
      case 'enabled':
        return [{ command: 'enableClient', username }];
      case 'issued': {
        // Recreated from scratch (deleting a client also cuts its live connection), so a retry
        // or a rotation lands in the same state whatever was there before.
        const acl = edgeAclFilters(
          change.account,
          change.clientId,
          change.kind === 'gateway' ? GATEWAY_APP_ID : VPN_APP_ID,
        );
        const commands: DynsecCommand[] = [
          ...remove,
          {
            command: 'createRole',
            rolename,
            acls: [
              ...acl.publish.map((topic) => ({ acltype: 'publishClientSend', topic, allow: true })),
              ...acl.subscribe.map((topic) => ({ acltype: 'subscribePattern', topic, allow: true })),
            ],
          },
          {
            command: 'createClient',
            username,
            password: change.password,
            clientid: username,
            textname: `${change.kind} ${change.id}`,
            roles: [{ rolename }],
          },
        ];
        // New credentials for a disabled device must not let it in.
        if ((await this.edge.isEnabled(change.kind, change.id)) === false) {
          commands.push({ command: 'disableClient', username });
        }
        return commands;
      }
    }
  }

  /** The cloud's own client needs the protocol's topics: dynsec's admin role reaches only $CONTROL. */
  private async grantCloudRole(): Promise<void> {
    const wanted = [
      { acltype: 'publishClientSend', topic: '$EDC/#' },
      { acltype: 'subscribePattern', topic: '$EDC/#' },
      { acltype: 'subscribePattern', topic: CloudSubscriptions.status },
      { acltype: 'subscribePattern', topic: CloudSubscriptions.gatewayPeers },
    ];
    const [role] = await this.control.run([{ command: 'getRole', rolename: CLOUD_ROLE }]);
    if (role.error === 'Role not found') {
      await this.expectOk([
        { command: 'createRole', rolename: CLOUD_ROLE, acls: wanted.map((a) => ({ ...a, allow: true })) },
      ]);
    } else {
      if (role.error) throw new Error(`getRole ${CLOUD_ROLE}: ${role.error}`);
      const have = ((role.data as { role?: { acls?: Array<{ acltype: string; topic: string }> } }).role
        ?.acls ?? []) as Array<{ acltype: string; topic: string }>;
      // Only the missing ones: the plugin drops the connection on a duplicate ACL.
      const missing = wanted.filter((w) => !have.some((h) => h.acltype === w.acltype && h.topic === w.topic));
      await this.expectOk(
        missing.map((a) => ({ command: 'addRoleACL', rolename: CLOUD_ROLE, ...a, allow: true })),
      );
    }
    if (await this.cloudHoldsRole()) return;
    // Adding a role the client already holds answers "Internal error", so only when missing. The
    // broker then kicks the cloud's client so that its new ACL applies: the answer is lost with
    // the connection, and the role is checked again once the client is back.
    const username = this.config.mqttUsername ?? '';
    void this.control
      .run([{ command: 'addClientRole', username, rolename: CLOUD_ROLE }])
      .catch(() => undefined);
    const deadline = Date.now() + CONNECT_TIMEOUT_MS;
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const holds = await this.cloudHoldsRole(2000).catch((err: Error) => {
        if (Date.now() > deadline) throw err;
        return false;
      });
      if (holds) return;
      if (Date.now() > deadline) throw new Error(`the cloud's client did not get the ${CLOUD_ROLE} role`);
    }
  }

  private async cloudHoldsRole(timeoutMs?: number): Promise<boolean> {
    const username = this.config.mqttUsername ?? '';
    const [client] = await this.control.run([{ command: 'getClient', username }], timeoutMs);
    if (client.error) throw new Error(`getClient ${username}: ${client.error}`);
    const roles = (client.data as { client?: { roles?: Array<{ rolename: string }> } }).client?.roles ?? [];
    return roles.some((r) => r.rolename === CLOUD_ROLE);
  }

  private async expectOk(commands: DynsecCommand[]): Promise<void> {
    if (commands.length === 0) return;
    const bad = (await this.control.run(commands)).filter(failed);
    if (bad.length > 0) throw new Error(bad.map((r) => `${r.command}: ${r.error}`).join('; '));
  }

  /**
   * Start-up reconciliation by difference: dynsec clients of devices or gateways the database no
   * longer has are deleted (with their roles), a device's disabled state is set as the database
   * says, and edge clients with credentials the broker lacks are reported: only digests of their
   * passwords are stored, so they need new credentials.
   */
  async reconcile(): Promise<void> {
    const [clientsR, rolesR] = await this.control.run([
      { command: 'listClients', verbose: true, count: -1 },
      { command: 'listRoles', verbose: false, count: -1 },
    ]);
    if (clientsR.error) throw new Error(`dynsec listClients: ${clientsR.error}`);
    if (rolesR.error) throw new Error(`dynsec listRoles: ${rolesR.error}`);
    const listed = ((clientsR.data as { clients?: ListedClient[] }).clients ?? []).filter(
      (c) => c.username !== this.config.mqttUsername && isEdgeUsername(c.username),
    );
    const roles = ((rolesR.data as { roles?: string[] }).roles ?? []).filter((r) =>
      r.startsWith(EDGE_ROLE_PREFIX),
    );
    const records = await this.edge.list();
    const wanted = new Map(records.map((r) => [r.username, r]));
    const inBroker = new Map(listed.map((c) => [c.username, c]));

    const commands: DynsecCommand[] = [];
    const stale = listed.filter((c) => !wanted.has(c.username)).map((c) => c.username);
    for (const username of stale) commands.push({ command: 'deleteClient', username });
    for (const rolename of roles) {
      if (!wanted.has(rolename.slice(EDGE_ROLE_PREFIX.length)))
        commands.push({ command: 'deleteRole', rolename });
    }
    let toggled = 0;
    for (const record of records) {
      const client = inBroker.get(record.username);
      if (!client) continue;
      const disabled = client.disabled === true;
      if (disabled === record.enabled) {
        toggled++;
        commands.push({
          command: record.enabled ? 'enableClient' : 'disableClient',
          username: record.username,
        });
      }
    }
    await this.expectOk(commands);
    this.missingCredentials = records.filter((r) => !inBroker.has(r.username)).map((r) => r.username);
    this.logger.log(
      { deleted: stale.length, toggled, missing: this.missingCredentials.length },
      'dynsec reconciled with the database',
    );
    if (this.missingCredentials.length > 0) {
      this.logger.warn(
        { count: this.missingCredentials.length, clients: this.missingCredentials.slice(0, 100) },
        'devices or gateways hold credentials the broker lacks: issue new credentials for them ' +
          '(POST …/credentials); their passwords are stored only as digests and cannot be recreated',
      );
    }
  }
}
