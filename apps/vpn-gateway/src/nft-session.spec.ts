// The long-lived nft session, against a stand-in `nft` that answers like `nft -i` does: nothing for
// a change, an Error block for a refused one, the set for a listing.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { NftSession, NftSessionError } from './nft-session';
import { createLogger } from '@app/edge';

const FAKE_NFT = `#!/bin/sh
[ "$1" = "-i" ] || exit 9
while IFS= read -r line; do
  case "$line" in
    *crash*) exit 3 ;;
    *hang*) sleep 30 ;;
    *bad*) printf 'Error: Could not process rule: No such file or directory\\n%s\\n  ^^^\\n' "$line" >&2 ;;
    "list set inet t marker") printf 'table inet t {\\n\\tset marker {\\n\\t\\ttype ipv4_addr\\n\\t}\\n}\\n' ;;
  esac
done
`;

describe('NftSession', () => {
  let dir: string;
  let path: string | undefined;
  let session: NftSession;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nft-session-spec-'));
    writeFileSync(join(dir, 'nft'), FAKE_NFT);
    chmodSync(join(dir, 'nft'), 0o755);
    path = process.env.PATH;
    process.env.PATH = `${dir}:${path ?? ''}`;
    session = new NftSession(undefined, 't', 'marker', createLogger('silent'), 1000);
  });

  afterEach(() => {
    session.close();
    process.env.PATH = path;
    rmSync(dir, { recursive: true, force: true });
  });

  it('should resolve a line nft took, one after the other', async () => {
    await expect(session.run('add element inet t pairs { 1.1.1.1 . 2.2.2.2 }')).resolves.toBeUndefined();
    await Promise.all([session.run('add a'), session.run('add b'), session.run('add c')]);
  });

  it("should reject with nft's message for a refused line, and go on with the next", async () => {
    await expect(session.run('delete bad element')).rejects.toThrow(
      'nft: Error: Could not process rule: No such file or directory',
    );
    await expect(session.run('add fine')).resolves.toBeUndefined();
  });

  it('should start a new nft after one ended or hung', async () => {
    await expect(session.run('crash now')).rejects.toThrow(NftSessionError);
    await expect(session.run('add x')).resolves.toBeUndefined();
    await expect(session.run('hang now')).rejects.toThrow('did not answer within 1000 ms');
    await expect(session.run('add y')).resolves.toBeUndefined();
  });

  it('should refuse a line with a line break', () => {
    expect(() => session.run('add a\nflush ruleset')).toThrow(NftSessionError);
  });
});
