import { Column, CreateDateColumn, PrimaryGeneratedColumn, UpdateDateColumn, VersionColumn } from 'typeorm';

/** Kapua-style columns every entity carries: id, owning scope, who created it and when. */
export abstract class ScopedEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'scope_id', type: 'uuid', nullable: true })
  scopeId: string | null;

  @CreateDateColumn({ name: 'created_on', type: 'timestamptz' })
  createdOn: Date;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy: string | null;
}

/** Updatable entities also record the last change and carry an optimistic lock. */
export abstract class UpdatableEntity extends ScopedEntity {
  @UpdateDateColumn({ name: 'modified_on', type: 'timestamptz' })
  modifiedOn: Date;

  @Column({ name: 'modified_by', type: 'uuid', nullable: true })
  modifiedBy: string | null;

  @VersionColumn({ name: 'optlock' })
  optlock: number;
}
