/**
 * One decision, taken when a test file loads, for tests that need root or system tools
 * (wireguard-go, wg, ip netns, a browser): when they are there the suite runs; when they are
 * missing, CI (`CI=true`) fails the suite with the reason, and anywhere else Jest reports its
 * tests as skipped (never as passed, as an early `return` inside a test would).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

export interface Needs {
  root?: boolean;
  /** Program names looked up on PATH, or absolute paths. */
  tools?: readonly string[];
  /** How to install what is missing, added to the reason. */
  install?: string;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(tool: string): boolean {
  if (isAbsolute(tool)) return executable(tool);
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return dirs.some((dir) => executable(join(dir, tool)));
}

/** Why the needs are not met here (not root, tools missing), or undefined when they are. */
export function missingNeeds(needs: Needs): string | undefined {
  const reasons: string[] = [];
  if (needs.root && process.getuid?.() !== 0) reasons.push('not root');
  const missing = (needs.tools ?? []).filter((tool) => !onPath(tool));
  if (missing.length > 0) {
    reasons.push(`missing ${missing.join(', ')}${needs.install ? ` (${needs.install})` : ''}`);
  }
  return reasons.length === 0 ? undefined : reasons.join('; ');
}

/**
 * `describe` when `needs` are met, else `describe.skip` (with a warning naming the reason);
 * under CI a missing need throws while the file loads, so the suite fails.
 */
export function describeWhen(suite: string, needs: Needs): jest.Describe {
  const reason = missingNeeds(needs);
  if (reason === undefined) return describe;
  if (process.env.CI === 'true') throw new Error(`${suite} cannot run in CI: ${reason}`);
  console.warn(`SKIPPING ${suite}: ${reason}`);
  return describe.skip;
}

/** Root plus the tools every real-tunnel test uses. */
export const TUNNEL_NEEDS: Needs = {
  root: true,
  tools: ['wireguard-go', 'wg', 'ip', 'ping', 'nft', 'sysctl'],
  install: 'apt-get install wireguard-go wireguard-tools iproute2 iputils-ping nftables procps',
};
