// Running the system tools the gateway needs, inside the interface's network namespace when it has
// one, and checking at start that they are installed at all.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

import { runSystemCommand } from '@app/edge';

/** Runs a system tool where the interface lives; `input` goes to its stdin. */
export type ToolRunner = (file: string, args: readonly string[], input?: string) => Promise<string>;

/** The argv that runs `file args` inside `netns` (or as is without one). */
export function inNetns(
  netns: string | undefined,
  file: string,
  args: readonly string[],
): [string, string[]] {
  return netns === undefined ? [file, [...args]] : ['ip', ['netns', 'exec', netns, file, ...args]];
}

export function toolRunner(netns: string | undefined): ToolRunner {
  return (file, args, input) => {
    const [command, argv] = inNetns(netns, file, args);
    return runSystemCommand(command, argv, input === undefined ? {} : { input });
  };
}

/** Each tool and the Debian package it comes from. */
const TOOLS: readonly (readonly [string, string])[] = [
  ['wireguard-go', 'wireguard-go'],
  ['wg', 'wireguard-tools'],
  ['ip', 'iproute2'],
  ['nft', 'nftables'],
  ['sysctl', 'procps'],
];

export class MissingToolsError extends Error {
  override readonly name = 'MissingToolsError';
}

/** Throws one sentence naming what is missing and how to install it. */
export async function checkSystemTools(path = process.env.PATH ?? ''): Promise<void> {
  const dirs = path.split(delimiter).filter((d) => d !== '');
  const missing: (readonly [string, string])[] = [];
  for (const tool of TOOLS) {
    if (!(await onPath(tool[0], dirs))) missing.push(tool);
  }
  if (missing.length === 0) return;
  const names = missing.map(([tool, pkg]) => `${tool} (${pkg})`).join(', ');
  throw new MissingToolsError(
    `vpn-gateway needs ${names}, not found on PATH: install with apt-get install wireguard-go wireguard-tools iproute2 nftables procps`,
  );
}

async function onPath(tool: string, dirs: readonly string[]): Promise<boolean> {
  for (const dir of dirs) {
    try {
      await access(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}
