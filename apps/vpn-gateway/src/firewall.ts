// The gateway's nftables table: forwarding between peers only for the address pairs in one set,
// changed element by element in one `nft -f -` transaction per message.
import { createHash } from 'node:crypto';

import { NftSession } from './nft-session';
import type { PairDelta } from './pair-index';
import type { ToolRunner } from './system-tools';
import { Logger, SystemCommandError } from '@app/edge';

/** Elements per `add element` / `delete element` statement: keeps nft's line parser on short lines. */
const ELEMENTS_PER_STATEMENT = 1000;
/**
 * Changes up to this many elements go to the running `nft -i`; bigger ones (full syncs) to a new
 * `nft -f -`, which parses long element lists several times faster than the interactive line reader.
 */
const SESSION_MAX_ELEMENTS = 256;
/** An always-empty set: listing it after each interactive line marks the end of nft's answer. */
const MARKER_SET = 'marker';

/**
 * `vpngw_<interface>`: one table per interface, so that two gateways on one host (or in one
 * namespace) never touch each other's rules. Characters nft does not take in a name are replaced,
 * and a hash of the real name is appended so that `gw-0` and `gw_0` still get different tables.
 */
export function firewallTableName(interfaceName: string): string {
  const safe = interfaceName.replace(/[^A-Za-z0-9_]/g, '_');
  if (safe === interfaceName) return `vpngw_${safe}`;
  return `vpngw_${safe}_${createHash('sha256').update(interfaceName).digest('hex').slice(0, 6)}`;
}

/**
 * Packets in from the interface pass only when `source . destination` is in @pairs; everything
 * else forwarded in from or out to it is dropped (IPv6 too: it never matches the set). Packets to
 * the gateway itself take the input hook, which this table leaves alone, so a peer can always
 * reach the gateway's addresses. Replies need no conntrack: the pairs are stored both ways.
 */
function rules(table: string, interfaceName: string): string[] {
  const iif = `iifname "${interfaceName}"`;
  const oif = `oifname "${interfaceName}"`;
  return [
    `add rule inet ${table} forward ${iif} ip saddr . ip daddr @pairs accept`,
    `add rule inet ${table} forward ${iif} drop`,
    `add rule inet ${table} forward ${oif} drop`,
  ];
}

function skeleton(table: string): string[] {
  return [
    `add table inet ${table}`,
    `add set inet ${table} pairs { type ipv4_addr . ipv4_addr; }`,
    `add set inet ${table} ${MARKER_SET} { type ipv4_addr; }`,
    `add chain inet ${table} forward { type filter hook forward priority filter; policy accept; }`,
  ];
}

/** A new, empty table; whatever a previous run left under that name goes in the same transaction. */
export function createRuleset(table: string, interfaceName: string): string {
  return [
    `add table inet ${table}`,
    `delete table inet ${table}`,
    ...skeleton(table),
    ...rules(table, interfaceName),
    '',
  ].join('\n');
}

/** The table of a previous run made current: rules rewritten, set elements kept (until the next full sync). */
export function adoptRuleset(table: string, interfaceName: string): string {
  return [...skeleton(table), `flush chain inet ${table} forward`, ...rules(table, interfaceName), ''].join(
    '\n',
  );
}

/** The statements for one message, one transaction; none when there is nothing to change. */
export function pairStatements(table: string, delta: PairDelta, flush: boolean): string[] {
  const lines: string[] = [];
  if (flush) lines.push(`flush set inet ${table} pairs`);
  else
    for (let i = 0; i < delta.remove.length; i += ELEMENTS_PER_STATEMENT) {
      const part = delta.remove.slice(i, i + ELEMENTS_PER_STATEMENT);
      lines.push(`delete element inet ${table} pairs { ${part.join(', ')} }`);
    }
  for (let i = 0; i < delta.add.length; i += ELEMENTS_PER_STATEMENT) {
    const part = delta.add.slice(i, i + ELEMENTS_PER_STATEMENT);
    lines.push(`add element inet ${table} pairs { ${part.join(', ')} }`);
  }
  return lines;
}

export class Firewall {
  readonly table: string;
  private readonly session: NftSession;

  constructor(
    private readonly interfaceName: string,
    netns: string | undefined,
    private readonly run: ToolRunner,
    logger: Logger,
  ) {
    this.table = firewallTableName(interfaceName);
    this.session = new NftSession(netns, this.table, MARKER_SET, logger);
  }

  async create(): Promise<void> {
    await this.run('nft', ['-f', '-'], createRuleset(this.table, this.interfaceName));
    await this.warmUp();
  }

  /** Keeps the elements of a table a previous run left; false when there was none (a fresh one was made). */
  async adopt(): Promise<boolean> {
    const existed = await this.run('nft', ['list', 'set', 'inet', this.table, 'pairs']).then(
      () => true,
      () => false,
    );
    if (existed) {
      try {
        await this.run('nft', ['-f', '-'], adoptRuleset(this.table, this.interfaceName));
        await this.warmUp();
        return true;
      } catch {
        // A table of another shape (an older layout): start empty, the first full sync fills it.
      }
    }
    await this.create();
    return false;
  }

  /** Starts the nft session now, so the first change set does not pay for starting nft. */
  private async warmUp(): Promise<void> {
    await this.session.run('');
  }

  async apply(delta: PairDelta, flush: boolean): Promise<void> {
    const statements = pairStatements(this.table, delta, flush);
    if (statements.length === 0) return;
    if (!flush && delta.add.length + delta.remove.length <= SESSION_MAX_ELEMENTS) {
      await this.session.run(statements.join('; '));
    } else {
      await this.run('nft', ['-f', '-'], `${statements.join('\n')}\n`);
    }
  }

  /** Deletes the table; a missing one is fine. */
  async remove(): Promise<void> {
    this.session.close();
    try {
      await this.run('nft', ['delete', 'table', 'inet', this.table]);
    } catch (err) {
      if (err instanceof SystemCommandError && /No such file or directory|does not exist/i.test(err.stderr))
        return;
      throw err;
    }
  }
}
