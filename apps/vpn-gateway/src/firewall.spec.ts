// The nftables text the gateway sends: table names, the rules, and the element batches.
import { adoptRuleset, createRuleset, firewallTableName, pairStatements } from './firewall';

describe('firewallTableName', () => {
  it('should be vpngw_<interface> for names nft takes as they are', () => {
    expect(firewallTableName('vpngw0')).toBe('vpngw_vpngw0');
  });

  it('should replace other characters and keep names apart with a hash', () => {
    const dash = firewallTableName('gw-0');
    const underscore = firewallTableName('gw_0');
    expect(dash).toMatch(/^vpngw_gw_0_[0-9a-f]{6}$/);
    expect(dash).not.toBe(underscore);
  });
});

describe('rulesets', () => {
  it('should accept only listed pairs in from the interface and drop everything else forwarded through it', () => {
    const text = createRuleset('vpngw_wg0', 'wg0');
    expect(text.split('\n')).toEqual([
      'add table inet vpngw_wg0',
      'delete table inet vpngw_wg0',
      'add table inet vpngw_wg0',
      'add set inet vpngw_wg0 pairs { type ipv4_addr . ipv4_addr; }',
      'add set inet vpngw_wg0 marker { type ipv4_addr; }',
      'add chain inet vpngw_wg0 forward { type filter hook forward priority filter; policy accept; }',
      'add rule inet vpngw_wg0 forward iifname "wg0" ip saddr . ip daddr @pairs accept',
      'add rule inet vpngw_wg0 forward iifname "wg0" drop',
      'add rule inet vpngw_wg0 forward oifname "wg0" drop',
      '',
    ]);
    expect(text).not.toMatch(/hook input/);
  });

  it('should keep the set when taking a table over, and rewrite only the rules', () => {
    const text = adoptRuleset('vpngw_wg0', 'wg0');
    expect(text).not.toContain('delete table');
    expect(text).not.toContain('flush set');
    expect(text).toContain('flush chain inet vpngw_wg0 forward');
  });
});

describe('pairStatements', () => {
  it('should delete before adding, in one list of statements', () => {
    expect(pairStatements('t', { add: ['1.1.1.1 . 2.2.2.2'], remove: ['3.3.3.3 . 4.4.4.4'] }, false)).toEqual(
      ['delete element inet t pairs { 3.3.3.3 . 4.4.4.4 }', 'add element inet t pairs { 1.1.1.1 . 2.2.2.2 }'],
    );
  });

  it('should flush instead of deleting when rebuilding, and be empty when nothing changes', () => {
    expect(pairStatements('t', { add: [], remove: ['x'] }, true)).toEqual(['flush set inet t pairs']);
    expect(pairStatements('t', { add: [], remove: [] }, false)).toEqual([]);
  });

  it('should cut long element lists into statements of 1000', () => {
    const add = Array.from({ length: 2500 }, (_v, i) => `10.0.${i >> 8}.${i & 255} . 10.1.0.1`);
    const statements = pairStatements('t', { add, remove: [] }, false);
    expect(statements).toHaveLength(3);
    expect(statements[2].split(', ')).toHaveLength(500);
  });
});
