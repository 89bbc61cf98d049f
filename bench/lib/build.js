'use strict';
// Compiles the app into a private folder (.tmp/bench-dist-<hash of the sources>), never into dist/,
// so that concurrent `npm run build`s and test runs cannot swap files under a running benchmark.
// The same sources reuse the same folder; it is built next to its final name and renamed in place.
const { execFile } = require('node:child_process');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const SOURCE_DIRS = ['apps', 'libs', 'migrations'];
const SOURCE_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];
const MARKER = '.bench-build-complete';
const ENTRY_POINTS = ['apps/api/src/main.js', 'apps/vpn-agent/src/main.js', 'libs/protocol/src/index.js'];

function walk(dir, out) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.ts')) out.push(p);
  }
}

function sourceHash() {
  const files = [];
  for (const d of SOURCE_DIRS) walk(path.join(ROOT, d), files);
  for (const f of SOURCE_FILES) files.push(path.join(ROOT, f));
  const h = createHash('sha256');
  for (const f of files) {
    h.update(path.relative(ROOT, f));
    try {
      h.update(fs.readFileSync(f));
    } catch {
      h.update('missing');
    }
  }
  return h.digest('hex').slice(0, 16);
}

function run(bin, args) {
  return new Promise((resolve) => {
    execFile(
      path.join(ROOT, 'node_modules', '.bin', bin),
      args,
      { cwd: ROOT, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code ?? 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

/** Returns the folder holding the compiled app (apps/…, libs/…), compiling it when needed. */
async function buildApp(log) {
  if (process.env.BENCH_DIST_DIR) return path.resolve(process.env.BENCH_DIST_DIR);
  const tmp = path.join(ROOT, '.tmp');
  fs.mkdirSync(tmp, { recursive: true });
  const dir = path.join(tmp, `bench-dist-${sourceHash()}`);
  if (fs.existsSync(path.join(dir, MARKER))) {
    log(`compiled app: reusing ${path.relative(ROOT, dir)} (sources unchanged)`);
    return dir;
  }
  const work = `${dir}.${process.pid}.tmp`;
  fs.rmSync(work, { recursive: true, force: true });
  const started = Date.now();
  log(`compiling the app into ${path.relative(ROOT, dir)} ...`);
  const tsc = await run('tsc', ['-p', 'tsconfig.build.json', '--outDir', work]);
  // A type error elsewhere in a tree being edited still emits JavaScript: benchmark it, but say so.
  const missing = ENTRY_POINTS.filter((e) => !fs.existsSync(path.join(work, e)));
  if (missing.length > 0) {
    throw new Error(`tsc produced no ${missing.join(', ')}:\n${tsc.output.slice(-3000)}`);
  }
  if (tsc.code !== 0)
    log(`warning: tsc reported errors (JavaScript was emitted):\n${tsc.output.slice(-1500)}`);
  const alias = await run('tsc-alias', ['-p', 'tsconfig.build.json', '--outDir', work]);
  if (alias.code !== 0) throw new Error(`tsc-alias failed:\n${alias.output.slice(-3000)}`);
  fs.writeFileSync(path.join(work, MARKER), `${new Date().toISOString()}\n`);
  try {
    fs.renameSync(work, dir);
  } catch {
    // Another run finished the same build first: use that one.
    fs.rmSync(work, { recursive: true, force: true });
  }
  // Builds of older sources are left for runs that may still use them, but not forever.
  for (const name of fs.readdirSync(tmp)) {
    const p = path.join(tmp, name);
    if (!name.startsWith('bench-dist-') || p === dir) continue;
    try {
      if (Date.now() - fs.statSync(p).mtimeMs > 24 * 3600_000) fs.rmSync(p, { recursive: true, force: true });
    } catch {
      /* in use or gone */
    }
  }
  log(`compiled in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return dir;
}

module.exports = { buildApp, ROOT };
