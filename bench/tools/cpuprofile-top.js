#!/usr/bin/env node
'use strict';
// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by package/file, so a
// profile of the API under a scenario's load can be read without a browser.
// Only the samples of the busiest stretch count by default (--window auto): the longest run of
// seconds whose CPU use is at least half the peak, so start-up and idle time do not dilute the load.
// usage: node bench/tools/cpuprofile-top.js FILE.cpuprofile [topN] [--window auto|all|FROM:TO (s)]
//        [--callers FUNCTION]   (the call stacks that lead to FUNCTION's self time)
const fs = require('node:fs');

const args = process.argv.slice(2);
const wi = args.indexOf('--window');
const windowArg = wi >= 0 ? args.splice(wi, 2)[1] : 'auto';
const ci = args.indexOf('--callers');
const callersOf = ci >= 0 ? args.splice(ci, 2)[1] : null;
const [file, topArg] = args;
const top = Number(topArg ?? 30);
if (!file) {
  console.error(
    'usage: node bench/tools/cpuprofile-top.js FILE.cpuprofile [topN] [--window auto|all|FROM:TO]',
  );
  process.exit(2);
}
const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const dt = profile.timeDeltas;
const idleIds = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
// Busy time per second of the profile.
const at = [];
let clock = 0;
for (let i = 0; i < profile.samples.length; i++) {
  clock += dt[i] ?? 0;
  at.push(clock / 1e6);
}
const seconds = Math.ceil(clock / 1e6);
const busy = new Array(seconds + 1).fill(0);
for (let i = 0; i < profile.samples.length; i++) {
  if (!idleIds.has(profile.samples[i])) busy[Math.floor(at[i])] += (dt[i] ?? 0) / 1e6;
}
let from = 0;
let to = seconds + 1;
if (windowArg === 'auto') {
  // The longest run of consecutive seconds at ≥ half the peak: the load, not the start-up burst.
  const peak = Math.max(...busy);
  let best = [0, seconds + 1];
  for (let s = 0; s < busy.length;) {
    if (busy[s] < peak / 2) {
      s++;
      continue;
    }
    let e = s;
    while (e < busy.length && busy[e] >= peak / 2) e++;
    if (e - s > best[1] - best[0] || best[1] - best[0] > seconds) best = [s, e];
    s = e;
  }
  [from, to] = best;
} else if (windowArg !== 'all') {
  [from, to] = windowArg.split(':').map(Number);
}
console.log(`busy CPU per second: ${busy.map((b) => Math.round(b * 100)).join(' ')}`);
console.log(`window: ${from} s to ${to} s of ${seconds} s`);
const self = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  if (at[i] < from || at[i] >= to) continue;
  self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + (dt[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);

function where(cf) {
  const url = cf.url || '';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.includes('/apps/') || url.includes('/libs/')) return url.slice(url.search(/\/(apps|libs)\//) + 1);
  if (url.startsWith('node:')) return url;
  return url ? url : '(native/vm)';
}

const fn = new Map();
const pkg = new Map();
for (const [id, t] of self) {
  const cf = byId.get(id).callFrame;
  const name = cf.functionName || '(anonymous)';
  const loc = where(cf);
  const key = `${name}  ${loc}${cf.lineNumber >= 0 && cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  fn.set(key, (fn.get(key) ?? 0) + t);
  const group = ['(garbage collector)', '(program)', '(idle)'].includes(name)
    ? name
    : loc.replace(/:.*$/, '');
  pkg.set(group, (pkg.get(group) ?? 0) + t);
}
const pct = (t) => `${((t / total) * 100).toFixed(1).padStart(5)} %`;
console.log(`total sampled ${(total / 1e6).toFixed(2)} s\n\nself time by package / file:`);
for (const [k, t] of [...pkg].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);
console.log('\nself time by function:');
for (const [k, t] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);

if (callersOf) {
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stacks = new Map();
  for (const [id, t] of self) {
    if (byId.get(id).callFrame.functionName !== callersOf) continue;
    const frames = [];
    for (let p = parent.get(id); p !== undefined && frames.length < 8; p = parent.get(p)) {
      const cf = byId.get(p).callFrame;
      if (!cf.functionName && !cf.url) continue;
      frames.push(`${cf.functionName || '(anonymous)'}@${where(cf)}`);
    }
    const key = frames.join(' < ');
    stacks.set(key, (stacks.get(key) ?? 0) + t);
  }
  console.log(`\ncallers of ${callersOf}:`);
  for (const [k, t] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`${pct(t)}  ${k}`);
}
