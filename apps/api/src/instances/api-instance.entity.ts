import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One running API process and its lease (docs/scale-out.md). The process renews `expires_on`
 * every heartbeat; once it has passed, any other instance may close the operations it left
 * RUNNING and delete the row. Times are the database's clock, so replicas never compare clocks.
 */
@Entity('api_instance')
@Index('api_instance_expires_idx', ['expiresOn'])
export class ApiInstance {
  @PrimaryColumn({ type: 'uuid', primaryKeyConstraintName: 'api_instance_pk' })
  id: string;

  /** Its MQTT client id (where its command replies are routed), for operators. */
  @Column({ name: 'mqtt_client_id', type: 'varchar', length: 64 })
  mqttClientId: string;

  /** The host name of its machine or container, for operators. */
  @Column({ type: 'varchar', length: 255 })
  host: string;

  @Column({ name: 'started_on', type: 'timestamptz', default: () => 'now()' })
  startedOn: Date;

  @Column({ name: 'renewed_on', type: 'timestamptz', default: () => 'now()' })
  renewedOn: Date;

  @Column({ name: 'expires_on', type: 'timestamptz' })
  expiresOn: Date;
}
