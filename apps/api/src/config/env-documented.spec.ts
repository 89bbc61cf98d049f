import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Every environment variable the API reads is in the README's configuration table: the table is
 * what an operator has. Reads are found in the source as `str(env, 'NAME')`-style calls (the
 * config readers in config/) and `process.env.NAME` / `process.env['NAME']`.
 */
const REPO = join(__dirname, '..', '..', '..', '..');
const SOURCE = join(REPO, 'apps', 'api', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !/\.(spec|int-spec|e2e-spec)\.ts$/.test(entry.name) ? [path] : [];
  });
}

const READS = [
  /\benv\s*,\s*'([A-Z][A-Z0-9_]*)'/g,
  /\bprocess\.env\.([A-Z][A-Z0-9_]*)/g,
  /\bprocess\.env\[\s*'([A-Z][A-Z0-9_]*)'\s*\]/g,
];

/** Variable name → the files that read it. */
function variablesRead(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of sourceFiles(SOURCE)) {
    const text = readFileSync(file, 'utf8');
    for (const pattern of READS) {
      for (const match of text.matchAll(pattern)) {
        found.set(match[1], [...(found.get(match[1]) ?? []), relative(REPO, file)]);
      }
    }
  }
  return found;
}

/** Names in the first cell of the README's `| variable | default | meaning |` table. */
function variablesDocumented(): Set<string> {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const lines = readme.slice(readme.indexOf('| variable | default | meaning |')).split('\n');
  const end = lines.findIndex((line) => !line.startsWith('|'));
  const names = new Set<string>();
  for (const row of lines.slice(0, end === -1 ? undefined : end)) {
    const firstCell = row.split('|')[1] ?? '';
    for (const m of firstCell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) names.add(m[1]);
  }
  return names;
}

describe('environment variables in the README', () => {
  it('should find the reads (the scan itself works)', () => {
    const read = variablesRead();
    expect([...read.keys()]).toEqual(
      expect.arrayContaining(['DATABASE_URL', 'ADMIN_PASSWORD', 'DATABASE_POOL_SIZE']),
    );
    expect(variablesDocumented().has('PORT')).toBe(true);
  });

  it('should document every variable the API reads in the configuration table', () => {
    const documented = variablesDocumented();
    const missing = [...variablesRead()]
      .filter(([name]) => !documented.has(name))
      .map(([name, files]) => `${name} (read in ${[...new Set(files)].join(', ')})`);
    expect(missing).toEqual([]);
  });
});
