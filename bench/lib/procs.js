'use strict';
// Child processes of the benchmark: every one is registered here and killed when the harness
// exits, normally or on SIGINT/SIGTERM/an uncaught error. Load generators are forked with IPC and
// also exit by themselves when the harness goes away (see load/child-guard.js).
const { spawn, fork } = require('node:child_process');

const children = new Set();
let cleanupHooks = [];

/** A child whose output lines can be awaited (API, agents, ceiling servers). */
class Proc {
  constructor(name, child, { echo = false } = {}) {
    this.name = name;
    this.child = child;
    this.pid = child.pid;
    this.lines = [];
    this.waiters = [];
    this.exitCode = undefined;
    children.add(this);
    let buffer = '';
    const onData = (chunk) => {
      buffer += chunk.toString('utf8');
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        if (this.lines.length >= 2000) this.lines.splice(0, 1000);
        this.lines.push(line);
        if (echo) process.stderr.write(`[${name}] ${line}\n`);
        this.waiters = this.waiters.filter((w) => (w.test(line) ? (w.resolve(line), false) : true));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code ?? signal;
        children.delete(this);
        for (const w of this.waiters) w.reject(new Error(`${name} exited (${this.exitCode})`));
        this.waiters = [];
        resolve(this.exitCode);
      }),
    );
  }

  get running() {
    return this.exitCode === undefined;
  }

  /** Resolves with the first line (already seen or future) matching `text`; bounded by timeoutMs. */
  waitFor(text, timeoutMs) {
    const test = (l) => (typeof text === 'string' ? l.includes(text) : text.test(l));
    const seen = this.lines.find(test);
    if (seen) return Promise.resolve(seen);
    if (!this.running) return Promise.reject(new Error(`${this.name} exited (${this.exitCode})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`${this.name}: no "${text}" within ${timeoutMs} ms; last lines:\n${this.tail(15)}`));
      }, timeoutMs);
      const done = (l) => {
        clearTimeout(timer);
        resolve(l);
      };
      this.waiters.push({
        test,
        resolve: done,
        reject: (e) => {
          clearTimeout(timer);
          reject(new Error(`${e.message}; last lines:\n${this.tail(15)}`));
        },
      });
    });
  }

  tail(n) {
    return this.lines.slice(-n).join('\n');
  }

  /** SIGTERM (or `signal`), SIGKILL after graceMs; resolves with the exit code. */
  async stop(signal = 'SIGTERM', graceMs = 10_000) {
    if (!this.running) return this.exitCode;
    try {
      this.child.kill(signal);
    } catch {
      /* already gone */
    }
    const timer = setTimeout(() => {
      try {
        this.child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }, graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

function start(name, command, args, options = {}) {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Proc(name, child, options);
}

/**
 * Forks a Node script with IPC; it receives `message` once, answers with one `{type:'result'}`
 * (or `{type:'error'}`), may send `{type:'progress'}` messages on the way. Bounded by timeoutMs.
 */
function runForked(name, script, message, { timeoutMs, onMessage, execArgv = [] }) {
  const child = fork(script, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv });
  const proc = new Proc(name, child, { echo: !!process.env.BENCH_ECHO });
  const result = new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      void proc.stop('SIGKILL', 0);
      reject(new Error(`${name} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', (m) => {
      if (m?.type === 'progress' || m?.type === 'ready') onMessage?.(m, proc);
      else if (m?.type === 'result' || m?.type === 'error') {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (m.type === 'result') resolve(m.data);
        else reject(new Error(`${name}: ${m.message}`));
      }
    });
    void proc.exited.then((code) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) without a result; last lines:\n${proc.tail(15)}`));
    });
  });
  child.send(message);
  return { proc, result };
}

/** Registers an async clean-up step (drop the database, ...), run once on any exit path. */
function onCleanup(fn) {
  cleanupHooks.push(fn);
}

let cleaning;
/** Stops every child (SIGTERM, SIGKILL after graceMs), then runs the clean-up hooks. */
function cleanupAll(graceMs = 8000) {
  cleaning ??= (async () => {
    await Promise.all([...children].map((p) => p.stop('SIGTERM', graceMs).catch(() => undefined)));
    const hooks = cleanupHooks.reverse();
    cleanupHooks = [];
    for (const hook of hooks) {
      await Promise.race([
        Promise.resolve()
          .then(hook)
          .catch((err) => process.stderr.write(`clean-up: ${err.message}\n`)),
        new Promise((r) => setTimeout(r, 15_000)),
      ]);
    }
  })();
  return cleaning;
}

/** Last resort when the process is going down synchronously: SIGKILL whatever is left. */
function killAllSync() {
  for (const p of children) {
    try {
      p.child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function installSignalHandlers() {
  let signals = 0;
  const onSignal = (signal) => {
    if (++signals > 1) {
      killAllSync();
      process.exit(130);
    }
    process.stderr.write(`\nbench: ${signal}, stopping children and cleaning up...\n`);
    void cleanupAll(3000).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllSync);
}

module.exports = { Proc, start, runForked, onCleanup, cleanupAll, killAllSync, installSignalHandlers };
