#!/usr/bin/env node
// entryhw_bench.mjs: one benchmark run of an Entry hardware bridge server.
//
// This process plays both peers of the server, on one clock (performance.now()):
//   parent   spawns the server the way Entry Hardware does
//            (spawn(cmd, args, {stdio: ['ignore', log, log, 'ipc'], detached: true}), then {key: 'open'})
//   browsers socket.io-client 2.5.0 over websocket, query {client: true, roomId}, emitting
//            'message' {data: JSON.stringify(...), mode: 0, type: 'utf8'} as entryjs does
//
// Phases, in order, on one server instance (plus a second one for the cloud relay):
//   startup   spawn -> runningModeChanged 2 -> first browser connected
//   rss_idle  VmRSS 0.5 s after the first browser connected
//   paced     parent send -> browser -> parent data round trips, one at a time, 1 ms gap
//   flood_b2p / flood_p2b   N messages one way as fast as the sender can queue them
//   rss_loaded  VmRSS after the floods
//   steady    20 browsers at 60 Hz each way for 10 s: one-way latencies, loss, server CPU, RSS
//   cloud     a second instance on the same port becomes a child; relay round trip
//             parent2 -> child -> host -> browser -> host -> child -> parent2
//   shutdown  SIGTERM -> exit, port released?
//
// Every wait is bounded in time, every loop in count; a global timeout ends the run; spawned
// servers are killed by PID (and their own process group) on every exit path. Loopback only.
// Output: a table on stdout, the full result as JSON with --json-out FILE.
// Exit status: 0 ran to the end (phase errors are inside the result), 1 fatal, 2 usage,
// 3 global timeout.

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';

const require = createRequire(import.meta.url);
const io = require('socket.io-client');
const SIO_CLIENT_VERSION = require('socket.io-client/package.json').version;
const FORMAT = 1; // bump when the result layout changes

const USAGE = `usage: node entryhw_bench.mjs [options]
  --cmd "CMD ARGS"       server command line, split like a shell (no shell runs it)
                         [default: entryhw-server]
  --port-via auto|arg|env  how the server learns its port: arg appends "--port N", env sets
                         ENTRY_PORT=N only (ENTRY_PORT is always set); auto = arg when the
                         program is entryhw-server, else env [default: auto]
  --port N               port on 127.0.0.1 for the server; 0 picks a free one [default: 0]
  --cwd DIR              working directory of the server [default: current]
  --label NAME           free text stored in the result [default: program name]
  --json-out FILE        write the result JSON there
  --log-dir DIR          server stdout/stderr go to DIR/server1.log, server2.log [default: a temp dir]
  --warmup N             untimed round trips before each RTT measurement [200]
  --paced-n N            timed paced round trips [2000]
  --pace-ms MS           idle gap between paced round trips [1]
  --flood N              messages per flood direction [20000]
  --steady-browsers N    browsers in the steady phase [20]
  --steady-hz HZ         messages per second per browser, and parent sends per second [60]
  --steady-s S           measured seconds of the steady phase [10]
  --steady-warmup-s S    seconds of the same load before it, not counted [1]
  --cloud-n N            timed relay round trips [1000]
  --skip LIST            comma list of: paced,flood,steady,cloud
  --global-timeout S     hard cap for the whole run [120]
  -q, --quiet            no progress on stderr
  -h, --help`;

// ---------------------------------------------------------------- options

function splitCommand(line) {
  const out = [];
  let cur = '';
  let quote = null;
  let started = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      started = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      started = true;
    } else if (/\s/.test(c)) {
      if (started) out.push(cur);
      cur = '';
      started = false;
    } else {
      cur += c;
      started = true;
    }
  }
  if (quote) throw new Error(`unbalanced ${quote} in --cmd`);
  if (started) out.push(cur);
  return out;
}

function parseArgs(argv) {
  const o = {
    cmd: 'entryhw-server', portVia: 'auto', port: 0, cwd: process.cwd(), label: null, jsonOut: null,
    logDir: null, warmup: 200, pacedN: 2000, paceMs: 1, flood: 20000, steadyBrowsers: 20,
    steadyHz: 60, steadyS: 10, steadyWarmupS: 1, cloudN: 1000, skip: new Set(),
    globalTimeout: 120, quiet: false,
  };
  const num = (a, v, { int = false, min = 0 } = {}) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) {
      throw new Error(`bad value for ${a}: ${v}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    switch (a) {
      case '--cmd': o.cmd = val(); break;
      case '--port-via': o.portVia = val(); break;
      case '--port': o.port = num(a, val(), { int: true }); if (o.port > 65535) throw new Error('--port > 65535'); break;
      case '--cwd': o.cwd = val(); break;
      case '--label': o.label = val(); break;
      case '--json-out': o.jsonOut = val(); break;
      case '--log-dir': o.logDir = val(); break;
      case '--warmup': o.warmup = num(a, val(), { int: true }); break;
      case '--paced-n': o.pacedN = num(a, val(), { int: true, min: 1 }); break;
      case '--pace-ms': o.paceMs = num(a, val()); break;
      case '--flood': o.flood = num(a, val(), { int: true, min: 1 }); break;
      case '--steady-browsers': o.steadyBrowsers = num(a, val(), { int: true, min: 1 }); break;
      case '--steady-hz': o.steadyHz = num(a, val(), { min: 0.1 }); break;
      case '--steady-s': o.steadyS = num(a, val(), { min: 0.1 }); break;
      case '--steady-warmup-s': o.steadyWarmupS = num(a, val()); break;
      case '--cloud-n': o.cloudN = num(a, val(), { int: true, min: 1 }); break;
      case '--skip':
        for (const s of val().split(',').map((x) => x.trim()).filter(Boolean)) {
          if (!['paced', 'flood', 'steady', 'cloud'].includes(s)) throw new Error(`cannot skip ${s}`);
          o.skip.add(s);
        }
        break;
      case '--global-timeout': o.globalTimeout = num(a, val(), { min: 1 }); break;
      case '-q': case '--quiet': o.quiet = true; break;
      case '-h': case '--help': console.log(USAGE); process.exit(0); break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!['auto', 'arg', 'env'].includes(o.portVia)) throw new Error('--port-via is auto, arg or env');
  o.argv = splitCommand(o.cmd);
  if (!o.argv.length) throw new Error('--cmd is empty');
  if (o.steadyBrowsers > 200) throw new Error('--steady-browsers is at most 200');
  if (o.steadyHz > 1000) throw new Error('--steady-hz is at most 1000');
  if (o.steadyS + o.steadyWarmupS > 120) throw new Error('steady phase longer than 120 s');
  if (o.flood > 1_000_000 || o.pacedN > 100_000 || o.cloudN > 100_000 || o.warmup > 10_000) {
    throw new Error('counts are capped: --flood 1e6, --paced-n/--cloud-n 1e5, --warmup 1e4');
  }
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(`entryhw_bench: ${err.message}\n${USAGE}`);
  process.exit(2);
}

const now = () => performance.now();
const log = (...a) => { if (!opts.quiet) console.error('[bench]', ...a); };
const round = (x, d = 3) => (x == null || !Number.isFinite(x) ? x : Math.round(x * 10 ** d) / 10 ** d);

// ---------------------------------------------------------------- cleanup

const spawned = new Set(); // Server objects whose process may still run
const openSockets = new Set();

function killAll() {
  for (const s of spawned) s.kill('SIGKILL');
}

// Kill what is left, give Node up to 1 s to reap it (no zombies), then exit.
function killAndExit(code) {
  killAll();
  const t0 = Date.now();
  const poll = setInterval(() => {
    if (!spawned.size || Date.now() - t0 > 1000) {
      clearInterval(poll);
      process.exit(code);
    }
  }, 10);
}

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`[bench] ${sig}: killing the servers and stopping`);
    killAndExit(130);
  });
}
process.on('uncaughtException', (err) => {
  console.error('[bench] uncaught:', err && err.stack ? err.stack : err);
  killAndExit(1);
});
process.on('unhandledRejection', (err) => {
  console.error('[bench] unhandled rejection:', err && err.stack ? err.stack : err);
  killAndExit(1);
});

// ---------------------------------------------------------------- statistics

// Probabilities at which every distribution is stored, for the CDF plots of run.py.
const CDF_P = [];
for (let i = 0; i <= 100; i++) CDF_P.push(i / 100);
CDF_P.splice(100, 0, 0.995, 0.999);

function quantile(sorted, p) {
  if (!sorted.length) return null;
  const x = p * (sorted.length - 1);
  const lo = Math.floor(x);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

function describe(samples) {
  const s = Float64Array.from(samples).sort();
  if (!s.length) return { n: 0 };
  let sum = 0;
  for (const v of s) sum += v;
  return {
    n: s.length,
    mean_ms: round(sum / s.length, 4),
    p50_ms: round(quantile(s, 0.5), 4),
    p90_ms: round(quantile(s, 0.9), 4),
    p99_ms: round(quantile(s, 0.99), 4),
    max_ms: round(s[s.length - 1], 4),
    cdf_ms: CDF_P.map((p) => round(quantile(s, p), 4)),
  };
}

// ---------------------------------------------------------------- /proc

function procStatus(pid) {
  try {
    const txt = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => {
      const m = txt.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'));
      return m ? Number(m[1]) : null;
    };
    return { rss_kb: kb('VmRSS'), hwm_kb: kb('VmHWM') };
  } catch {
    return { rss_kb: null, hwm_kb: null };
  }
}

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { timeout: 2000 }).toString().trim()) || 100;
} catch { /* keep 100 */ }

// Busy CPU seconds of the whole machine (all cores), from the first line of /proc/stat.
function machineBusySeconds() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal (guest is inside user)
    return (total - f[3] - f[4]) / CLK_TCK; // minus idle, iowait
  } catch {
    return null;
  }
}

function cpuSeconds(pid) {
  try {
    const txt = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = txt.slice(txt.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime: fields 14, 15
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- the server under test

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function portIsFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

class Server {
  constructor(name, port, logDir) {
    this.name = name;
    this.port = port;
    this.logPath = path.join(logDir, `${name}.log`);
    this.events = []; // non-'data' messages from the server: {t, key, value}
    this.waiters = [];
    this.onData = null;
    this.dataCount = 0;
    this.exitInfo = null;
    this.proc = null;
  }

  start() {
    const [file, ...args] = opts.argv;
    const viaArg = opts.portVia === 'arg' ||
      (opts.portVia === 'auto' && path.basename(file) === 'entryhw-server');
    if (viaArg) args.push('--port', String(this.port));
    const logFd = fs.openSync(this.logPath, 'a');
    this.t0 = now();
    this.proc = spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, ENTRY_PORT: String(this.port) },
      stdio: ['ignore', logFd, logFd, 'ipc'],
      detached: true,
    });
    fs.closeSync(logFd);
    spawned.add(this);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exitInfo = { t: now(), code, signal };
        spawned.delete(this);
        resolve(this.exitInfo);
      });
    });
    this.proc.on('error', (err) => {
      this.exitInfo = this.exitInfo || { t: now(), code: null, signal: null, error: err.message };
      spawned.delete(this);
      this.record({ key: '_spawn_error', value: err.message });
    });
    this.proc.on('spawn', () => {
      this.spawnedAt = now();
      log(`${this.name}: pid ${this.proc.pid}, port ${this.port}, log ${this.logPath}`);
    });
    this.proc.on('message', (msg) => {
      if (!msg || typeof msg !== 'object') return;
      if (msg.key === 'data') {
        this.dataCount++;
        if (this.onData) this.onData(msg.value);
      } else {
        this.record(msg);
      }
    });
    this.proc.on('disconnect', () => this.record({ key: '_disconnect' }));
    return this;
  }

  get pid() { return this.proc && this.proc.pid; }
  get alive() { return this.proc && this.proc.pid && !this.exitInfo; }

  record(msg) {
    const ev = { t: now(), key: msg.key, value: msg.value };
    if (this.events.length < 10000) this.events.push(ev);
    for (const w of [...this.waiters]) {
      if (w.pred(ev)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve(ev);
      }
    }
  }

  // The first event (from index `since` of the history on) that matches pred.
  waitFor(pred, ms, what, since = 0) {
    for (let i = since; i < this.events.length; i++) {
      if (pred(this.events[i])) return Promise.resolve(this.events[i]);
    }
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: no ${what} within ${ms} ms`));
      }, ms);
      this.waiters.push(w);
    });
  }

  send(msg) {
    if (this.proc && this.proc.connected) this.proc.send(msg);
  }

  kill(sig) {
    if (!this.alive) return;
    try { process.kill(-this.proc.pid, sig); } catch { /* no such group */ }
    try { process.kill(this.proc.pid, sig); } catch { /* already gone */ }
  }

  // SIGTERM, then (if needed) IPC disconnect, then SIGKILL; resolves with what happened.
  async stop(termMs = 5000) {
    if (!this.alive) return { already_exited: true };
    const t = now();
    this.kill('SIGTERM');
    const within = (ms) => Promise.race([this.exited, sleep(ms).then(() => null)]);
    let info = await within(termMs);
    const res = { sigterm_ms: null, how: 'SIGTERM' };
    if (!info) {
      res.how = 'disconnect';
      try { if (this.proc.connected) this.proc.disconnect(); } catch { /* gone */ }
      info = await within(3000);
    }
    if (!info) {
      res.how = 'SIGKILL';
      this.kill('SIGKILL');
      info = await within(3000);
    }
    res.exit_ms = info ? round(info.t - t) : null;
    if (res.how === 'SIGTERM') res.sigterm_ms = res.exit_ms;
    res.code = info ? info.code : null;
    res.signal = info ? info.signal : null;
    return res;
  }
}

// ---------------------------------------------------------------- browsers

const entryMessage = (obj) => ({ data: JSON.stringify(obj), mode: 0, type: 'utf8' });

function connectBrowser(port, roomId, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const socket = io(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      query: { client: true, roomId },
      forceNew: true,
      reconnection: false,
      timeout: timeoutMs,
    });
    const b = { socket, roomId, onMessage: null, t0: now() };
    socket.on('message', (payload) => { if (b.onMessage) b.onMessage(payload); });
    const timer = setTimeout(() => { fail(new Error(`browser ${roomId}: no connect in ${timeoutMs} ms`)); }, timeoutMs + 200);
    const fail = (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    };
    socket.once('connect', () => {
      clearTimeout(timer);
      b.connectMs = now() - b.t0;
      b.transport = socket.io.engine && socket.io.engine.transport && socket.io.engine.transport.name;
      b.emit = (obj) => socket.emit('message', entryMessage(obj));
      b.close = () => { socket.close(); openSockets.delete(b); };
      openSockets.add(b);
      resolve(b);
    });
    socket.once('connect_error', (err) => fail(new Error(`browser ${roomId}: ${err && err.message}`)));
    socket.once('connect_timeout', () => fail(new Error(`browser ${roomId}: connect timeout`)));
  });
}

async function connectWithRetry(port, roomId, deadline) {
  let attempts = 0;
  let lastErr = null;
  while (now() < deadline && attempts < 500) {
    attempts++;
    try {
      const b = await connectBrowser(port, roomId, Math.max(200, Math.min(3000, deadline - now())));
      b.attempts = attempts;
      return b;
    } catch (err) {
      lastErr = err;
      await sleep(20);
    }
  }
  throw lastErr || new Error('no browser connection');
}

// The payload a browser (or the parent) reads back from what the other end sent.
const parseEntry = (payload) => {
  if (!payload || typeof payload.data !== 'string') return null;
  try { return JSON.parse(payload.data); } catch { return null; }
};

// ---------------------------------------------------------------- phases

const result = {
  format: FORMAT,
  tool: 'entryhw_bench',
  meta: {},
  options: {},
  phases: {},
  summary: {},
  errors: [],
};

async function phase(name, capMs, fn) {
  const t = now();
  log(`${name}...`);
  let timer;
  try {
    const cap = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`phase ${name} over its ${capMs} ms cap`)), capMs);
    });
    result.phases[name] = await Promise.race([fn(), cap]);
  } catch (err) {
    result.phases[name] = { ...(result.phases[name] || {}), error: err.message };
    result.errors.push(`${name}: ${err.message}`);
    log(`${name} failed: ${err.message}`);
  } finally {
    clearTimeout(timer);
  }
  result.phases[name].phase_s = round((now() - t) / 1000, 2);
  return result.phases[name];
}

// Sequential round trips: send(seq, t) starts one, done(seq) must be called by the echo path.
// Returns the round-trip times of the timed ones (after `warmup`).
async function roundTrips({ warmup, n, paceMs, capMs, send, arm }) {
  const samples = [];
  let lost = 0;
  let pending = null;
  arm((seq, t) => {
    if (pending && pending.seq === seq) {
      const p = pending;
      pending = null;
      clearTimeout(p.timer);
      p.resolve(now() - t);
    }
  });
  const deadline = now() + capMs;
  for (let i = 0; i < warmup + n && now() < deadline; i++) {
    const rtt = await new Promise((resolve) => {
      pending = { seq: i, resolve };
      pending.timer = setTimeout(() => { pending = null; resolve(null); }, 1000);
      send(i, now());
    });
    if (rtt == null) {
      lost++;
      if (lost > 20) throw new Error(`more than 20 round trips lost (${i + 1} tried)`);
    } else if (i >= warmup) {
      samples.push(rtt);
    }
    if (paceMs > 0) await sleep(paceMs);
  }
  return { samples, lost, wanted: n };
}

async function flood({ n, sendOne, countIn, capMs }) {
  const seen = new Uint8Array(n);
  let count = 0;
  let dup = 0;
  let last = null;
  let done;
  const all = new Promise((resolve) => { done = resolve; });
  countIn((seq) => {
    if (!(seq >= 0 && seq < n)) return;
    if (seen[seq]) { dup++; return; }
    seen[seq] = 1;
    count++;
    last = now();
    if (count === n) done();
  });
  const cpu0 = process.cpuUsage();
  const t0 = now();
  const CHUNK = 500;
  for (let i = 0; i < n; i += CHUNK) {
    for (let j = i; j < Math.min(n, i + CHUNK); j++) sendOne(j);
    await tick(); // let the sockets and the IPC pipe move between chunks
  }
  const queuedMs = now() - t0;
  // Until all arrived, or 2 s without progress, or the cap.
  const deadline = t0 + capMs;
  while (count < n && now() < deadline) {
    const before = count;
    await Promise.race([all, sleep(2000)]);
    if (count === before) break;
  }
  const cpu = process.cpuUsage(cpu0);
  const span = (last ?? now()) - t0;
  return {
    n,
    received: count,
    lost: n - count,
    dup,
    queued_ms: round(queuedMs),
    span_ms: round(span),
    msgs_per_s: count ? Math.round(count / (span / 1000)) : 0,
    harness_cpu_frac: round((cpu.user + cpu.system) / 1000 / span, 3),
  };
}

async function main() {
  const t0run = now();
  const globalTimer = setTimeout(() => {
    result.errors.push(`global timeout (${opts.globalTimeout} s)`);
    console.error(`[bench] global timeout after ${opts.globalTimeout} s`);
    finish(3);
  }, opts.globalTimeout * 1000);

  const logDir = opts.logDir || fs.mkdtempSync(path.join(os.tmpdir(), 'entryhw-bench-'));
  fs.mkdirSync(logDir, { recursive: true });
  const port = opts.port || await freePort();
  if (opts.port && !(await portIsFree(port))) return finish(1, `port ${port} is taken`);
  result.meta = metadata(port, logDir);
  result.options = {
    warmup: opts.warmup, paced_n: opts.pacedN, pace_ms: opts.paceMs, flood: opts.flood,
    steady_browsers: opts.steadyBrowsers, steady_hz: opts.steadyHz, steady_s: opts.steadyS,
    steady_warmup_s: opts.steadyWarmupS, cloud_n: opts.cloudN, skip: [...opts.skip],
  };

  // -- startup
  const s1 = new Server('server1', port, logDir);
  let main = null;
  const st = await phase('startup', 20000, async () => {
    s1.start();
    s1.send({ key: 'open' });
    const ready = await Promise.race([
      s1.waitFor((e) => e.key === 'runningModeChanged' || e.key === '_spawn_error', 15000,
        'runningModeChanged'),
      s1.exited.then((x) => { throw new Error(`server exited (code ${x.code}, signal ${x.signal}) before it was ready; see ${s1.logPath}`); }),
    ]);
    if (ready.key === '_spawn_error') throw new Error(`cannot spawn: ${ready.value}`);
    if (ready.value !== 2) throw new Error(`runningModeChanged ${ready.value}, not 2 (port ${port} taken?)`);
    main = await connectWithRetry(port, 'bench-main', now() + 10000);
    const t = now();
    return {
      pid: s1.pid,
      spawn_ms: round(s1.spawnedAt - s1.t0),
      ready_ms: round(ready.t - s1.t0),
      first_browser_ms: round(t - s1.t0),
      browser_connect_ms: round(main.connectMs),
      browser_attempts: main.attempts,
      transport: main.transport,
    };
  });
  if (st.error) return finish(1, `startup failed: ${st.error}`);

  // -- idle RSS
  await sleep(500);
  result.phases.rss_idle = procStatus(s1.pid);

  // -- paced round trip
  if (!opts.skip.has('paced')) {
    await phase('paced', 30000, async () => {
      main.onMessage = (p) => {
        const d = p && p.data;
        if (d && d.k === 'rtt') main.emit({ k: 'rtt', seq: d.seq, t: d.t });
      };
      const r = await roundTrips({
        warmup: opts.warmup, n: opts.pacedN, paceMs: opts.paceMs, capMs: 25000,
        send: (seq, t) => s1.send({ key: 'send', value: { k: 'rtt', seq, t } }),
        arm: (done) => {
          s1.onData = (v) => {
            const d = parseEntry(v);
            if (d && d.k === 'rtt') done(d.seq, d.t);
          };
        },
      });
      return { ...describe(r.samples), lost: r.lost, wanted: r.wanted, pace_ms: opts.paceMs };
    });
    main.onMessage = null;
    s1.onData = null;
  }

  // -- floods
  if (!opts.skip.has('flood')) {
    await phase('flood_b2p', 30000, () => flood({
      n: opts.flood,
      capMs: 25000,
      sendOne: (seq) => main.emit({ k: 'fb', seq }),
      countIn: (got) => {
        s1.onData = (v) => {
          const d = parseEntry(v);
          if (d && d.k === 'fb') got(d.seq);
        };
      },
    }));
    s1.onData = null;
    await sleep(200);
    await phase('flood_p2b', 30000, () => flood({
      n: opts.flood,
      capMs: 25000,
      sendOne: (seq) => s1.send({ key: 'send', value: { k: 'fp', seq } }),
      countIn: (got) => {
        main.onMessage = (p) => {
          const d = p && p.data;
          if (d && d.k === 'fp') got(d.seq);
        };
      },
    }));
    main.onMessage = null;
    await sleep(300);
    result.phases.rss_loaded = procStatus(s1.pid);
  }

  // -- steady load
  if (!opts.skip.has('steady')) {
    main.close();
    main = null;
    await sleep(100);
    const browsers = [];
    const emitters = [];
    await phase('steady', (opts.steadyS + opts.steadyWarmupS) * 1000 + 30000, async () => {
      const tc = now();
      const settled = await Promise.allSettled(Array.from({ length: opts.steadyBrowsers },
        (_, i) => connectBrowser(port, `bench-steady-${i}`, 5000)));
      for (const s of settled) if (s.status === 'fulfilled') browsers.push(s.value);
      const failed = settled.length - browsers.length;
      if (failed) throw new Error(`${failed} of ${opts.steadyBrowsers} browsers did not connect`);
      const connectAllMs = now() - tc;
      await sleep(200);
      const rssStart = procStatus(s1.pid).rss_kb;

      const period = 1000 / opts.steadyHz;
      let win0 = Infinity;
      let win1 = Infinity;
      const inWindow = (t) => t >= win0 && t < win1;
      const b2p = [];
      const p2b = [];
      let sentB = 0;
      let sentP = 0;
      let gotB = 0;
      let gotP = 0;
      let skipped = 0;
      let stopped = false;
      s1.onData = (v) => {
        const d = parseEntry(v);
        if (d && d.k === 'st' && inWindow(d.t)) { b2p.push(now() - d.t); gotB++; }
      };
      for (const b of browsers) {
        b.onMessage = (p) => {
          const d = p && p.data;
          if (d && d.k === 'st' && inWindow(d.t)) { p2b.push(now() - d.t); gotP++; }
        };
      }
      // One timer chain per emitter (the parent, then each browser), their phases spread evenly
      // over the period; a tick more than one period late is skipped, not burst.
      const start = now() + 50;
      const emitterFns = [
        () => {
          const t = now();
          if (inWindow(t)) sentP++;
          s1.send({ key: 'send', value: { k: 'st', seq: sentP, t } });
        },
        ...browsers.map((b, i) => () => {
          const t = now();
          if (inWindow(t)) sentB++;
          b.emit({ k: 'st', b: i, t });
        }),
      ];
      emitterFns.forEach((fire, i) => {
        const e = { k: 0, offset: (i / emitterFns.length) * period, timer: null };
        const next = () => {
          if (stopped) return;
          const due = start + e.offset + e.k * period;
          e.timer = setTimeout(() => {
            if (stopped) return;
            const late = now() - due;
            if (late > period) {
              const miss = Math.floor(late / period);
              skipped += miss;
              e.k += miss;
            }
            fire();
            e.k++;
            next();
          }, Math.max(0, due - now()));
        };
        emitters.push(e);
        next();
      });
      win0 = start + opts.steadyWarmupS * 1000;
      await sleep(Math.max(0, win0 - now()));
      const cpuS0 = cpuSeconds(s1.pid);
      const cpuM0 = machineBusySeconds();
      const cpuH0 = process.cpuUsage();
      const w0 = now();
      win1 = w0 + opts.steadyS * 1000;
      await sleep(opts.steadyS * 1000);
      const w1 = now();
      stopped = true;
      for (const e of emitters) clearTimeout(e.timer);
      const cpuS1 = cpuSeconds(s1.pid);
      const cpuM1 = machineBusySeconds();
      const cpuH = process.cpuUsage(cpuH0);
      const wall = (w1 - w0) / 1000;
      const serverCpu = cpuS0 == null || cpuS1 == null ? null : (cpuS1 - cpuS0) / wall;
      const harnessCpu = (cpuH.user + cpuH.system) / 1e6 / wall;
      // Drain: whatever was sent in the window may still be on its way.
      const expectP = () => sentP * browsers.length;
      for (let i = 0; i < 30 && (gotB < sentB || gotP < expectP()); i++) await sleep(100);
      const rssEnd = procStatus(s1.pid).rss_kb;
      const ticks = sentB / browsers.length;
      return {
        browsers: browsers.length,
        hz: opts.steadyHz,
        measured_s: round(wall, 3),
        connect_all_ms: round(connectAllMs),
        achieved_hz: round(ticks / wall, 2),
        ticks_skipped: skipped,
        b2p: { ...describe(b2p), sent: sentB, lost: sentB - gotB },
        p2b: { ...describe(p2b), sent: expectP(), lost: expectP() - gotP },
        server_cpu_frac: round(serverCpu, 3),
        harness_cpu_frac: round(harnessCpu, 3),
        // Everything else the machine ran meanwhile (other processes: noise), in cores.
        others_cpu_frac: cpuM0 == null || serverCpu == null ? null
          : round(Math.max(0, (cpuM1 - cpuM0) / wall - serverCpu - harnessCpu), 3),
        rss_start_kb: rssStart,
        rss_end_kb: rssEnd,
      };
    });
    for (const e of emitters) clearTimeout(e.timer);
    s1.onData = null;
    for (const b of browsers) b.close();
    await sleep(200);
  }

  // -- cloud relay through a second instance
  let s2 = null;
  let cloudBrowser = null;
  if (!opts.skip.has('cloud')) {
    await phase('cloud', 40000, async () => {
      const room = 'bench-cloud';
      cloudBrowser = await connectBrowser(port, room, 5000);
      const since = s1.events.length;
      s2 = new Server('server2', port, logDir);
      s2.start();
      s2.send({ key: 'open' });
      const mode = await Promise.race([
        s2.waitFor((e) => e.key === 'runningModeChanged' || e.key === '_spawn_error', 15000,
          'runningModeChanged'),
        s2.exited.then((x) => { throw new Error(`server2 exited (code ${x.code}) before reporting a mode`); }),
      ]);
      if (mode.value !== 3) throw new Error(`second instance reported runningModeChanged ${mode.value}, not 3`);
      const out = { child_mode_ms: round(mode.t - s2.t0) };
      const seen = await s1.waitFor((e) => e.key === 'cloudModeChanged' && e.value === 1, 10000,
        'cloudModeChanged 1 (host sees the child)', since);
      out.host_sees_child_ms = round(seen.t - s2.t0);
      s2.send({ key: 'addRoomId', value: room });

      cloudBrowser.onMessage = (p) => {
        const d = p && p.data;
        if (d && d.k === 'cr') cloudBrowser.emit({ k: 'cr', seq: d.seq, t: d.t });
      };
      // Probe until the relay works both ways (matchTarget needs a moment to land).
      let armed = null;
      s2.onData = (v) => {
        const d = parseEntry(v);
        if (d && d.k === 'cr' && armed) armed(d.seq, d.t);
      };
      const probeDeadline = now() + 10000;
      let relayOk = false;
      for (let i = 0; i < 200 && now() < probeDeadline && !relayOk; i++) {
        relayOk = await new Promise((resolve) => {
          const timer = setTimeout(() => resolve(false), 50);
          armed = (seq) => { if (seq === -1 - i) { clearTimeout(timer); resolve(true); } };
          s2.send({ key: 'send', value: { k: 'cr', seq: -1 - i, t: now() } });
        });
      }
      armed = null;
      if (!relayOk) throw new Error('no message crossed the relay within 10 s');
      out.relay_ready_ms = round(now() - s2.t0);
      const r = await roundTrips({
        warmup: Math.min(opts.warmup, 100), n: opts.cloudN, paceMs: opts.paceMs, capMs: 20000,
        send: (seq, t) => s2.send({ key: 'send', value: { k: 'cr', seq, t } }),
        arm: (done) => { armed = done; },
      });
      Object.assign(out, { rtt: { ...describe(r.samples), lost: r.lost, wanted: r.wanted } });
      return out;
    });
    if (s2) {
      s2.onData = null;
      const stop = await s2.stop(5000);
      if (result.phases.cloud) result.phases.cloud.child_stop = stop;
    }
    if (cloudBrowser) cloudBrowser.onMessage = null;
  }

  // -- shutdown (VmHWM first: the peak resident size over the whole run)
  result.phases.rss_end = procStatus(s1.pid);
  await phase('shutdown', 15000, async () => {
    const stop = await s1.stop(5000);
    stop.port_released = await portIsFree(port);
    return stop;
  });
  for (const b of [...openSockets]) b.close();
  clearTimeout(globalTimer);
  result.wall_s = round((now() - t0run) / 1000, 2);
  result.meta.host.loadavg_1m_end = round(os.loadavg()[0], 2);
  return finish(0);
}

// ---------------------------------------------------------------- metadata and output

function firstLine(file, args) {
  try {
    const out = execFileSync(file, args, { timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
    return out.toString().trim().split('\n')[0] || null;
  } catch {
    return null;
  }
}

function which(file) {
  if (file.includes('/')) return path.resolve(opts.cwd, file);
  for (const dir of (process.env.PATH || '').split(':')) {
    const p = path.join(dir || '.', file);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch { /* next */ }
  }
  return null;
}

function metadata(port, logDir) {
  const cpuinfo = (() => { try { return fs.readFileSync('/proc/cpuinfo', 'utf8'); } catch { return ''; } })();
  const model = (cpuinfo.match(/^model name\s*:\s*(.+)$/m) || [])[1] || os.cpus()[0]?.model || null;
  const file = opts.argv[0];
  const resolved = which(file);
  const m = {
    date: new Date().toISOString(),
    host: { cpu_model: model, cpus: os.cpus().length, kernel: `${os.type()} ${os.release()}`,
            loadavg_1m: round(os.loadavg()[0], 2) },
    node: process.version,
    socket_io_client: SIO_CLIENT_VERSION,
    command: opts.cmd,
    program: resolved,
    label: opts.label || path.basename(file),
    port,
    log_dir: logDir,
    server_version: null,
    runtime: null,
  };
  if (!resolved) return m;
  const base = path.basename(resolved);
  if (base === 'entryhw-server') m.server_version = firstLine(resolved, ['--version']);
  // The interpreter that runs the server: the program itself (python3, node) or its #! line.
  let interp = null;
  if (/^(python[\d.]*|node|pypy[\d.]*)$/.test(base)) {
    interp = resolved;
  } else {
    try {
      const fd = fs.openSync(resolved, 'r');
      const buf = Buffer.alloc(256);
      const len = fs.readSync(fd, buf, 0, 256, 0);
      fs.closeSync(fd);
      const head = buf.subarray(0, len).toString('latin1');
      if (head.startsWith('#!')) {
        const words = head.slice(2).split('\n')[0].trim().split(/\s+/);
        interp = path.basename(words[0]) === 'env' ? which(words[1]) : words[0];
      }
    } catch { /* not readable */ }
  }
  if (interp) {
    // The venv's python3 next to a venv python (as README: "python3 --version" of the venv).
    const v = firstLine(interp, ['--version']);
    m.runtime = { interpreter: interp, version: v };
  }
  return m;
}

function summarize() {
  const p = result.phases;
  const s = {};
  const put = (k, v) => { if (v !== undefined && v !== null) s[k] = v; };
  put('startup_ready_ms', p.startup?.ready_ms);
  put('startup_first_browser_ms', p.startup?.first_browser_ms);
  put('rss_idle_kb', p.rss_idle?.rss_kb);
  put('paced_rtt_p50_ms', p.paced?.p50_ms);
  put('paced_rtt_p90_ms', p.paced?.p90_ms);
  put('paced_rtt_p99_ms', p.paced?.p99_ms);
  put('paced_rtt_lost', p.paced?.lost);
  put('flood_b2p_msgs_s', p.flood_b2p?.msgs_per_s);
  put('flood_b2p_lost', p.flood_b2p?.lost);
  put('flood_p2b_msgs_s', p.flood_p2b?.msgs_per_s);
  put('flood_p2b_lost', p.flood_p2b?.lost);
  put('rss_loaded_kb', p.rss_loaded?.rss_kb);
  put('steady_b2p_p50_ms', p.steady?.b2p?.p50_ms);
  put('steady_b2p_p99_ms', p.steady?.b2p?.p99_ms);
  put('steady_p2b_p50_ms', p.steady?.p2b?.p50_ms);
  put('steady_p2b_p99_ms', p.steady?.p2b?.p99_ms);
  put('steady_lost_b2p', p.steady?.b2p?.lost);
  put('steady_lost_p2b', p.steady?.p2b?.lost);
  put('steady_achieved_hz', p.steady?.achieved_hz);
  put('steady_server_cpu_frac', p.steady?.server_cpu_frac);
  put('steady_harness_cpu_frac', p.steady?.harness_cpu_frac);
  put('steady_others_cpu_frac', p.steady?.others_cpu_frac);
  put('steady_rss_end_kb', p.steady?.rss_end_kb);
  put('cloud_child_mode_ms', p.cloud?.child_mode_ms);
  put('cloud_relay_ready_ms', p.cloud?.relay_ready_ms);
  put('cloud_rtt_p50_ms', p.cloud?.rtt?.p50_ms);
  put('cloud_rtt_p99_ms', p.cloud?.rtt?.p99_ms);
  put('cloud_rtt_lost', p.cloud?.rtt?.lost);
  put('rss_peak_kb', p.rss_end?.hwm_kb);
  put('shutdown_exit_ms', p.shutdown?.exit_ms);
  if (p.shutdown && !p.shutdown.error) {
    put('shutdown_clean', p.shutdown.how === 'SIGTERM' && p.shutdown.port_released ? 1 : 0);
  }
  put('run_wall_s', result.wall_s);
  return s;
}

function table(summary) {
  const rows = Object.entries(summary);
  const w = Math.max(...rows.map(([k]) => k.length), 10);
  const lines = [
    `entryhw bench: ${result.meta.label} (${result.meta.command})`,
    `${result.meta.date}  ${result.meta.host?.cpu_model} x${result.meta.host?.cpus}  node ${result.meta.node}` +
      `  server ${result.meta.server_version ?? '?'}  runtime ${result.meta.runtime?.version ?? '?'}`,
    '-'.repeat(w + 14),
    ...rows.map(([k, v]) => `${k.padEnd(w)}  ${String(v).padStart(12)}`),
  ];
  if (result.errors.length) lines.push('errors:', ...result.errors.map((e) => `  ${e}`));
  return lines.join('\n');
}

let finishing = false;
function finish(code, fatal) {
  if (finishing) return;
  finishing = true;
  if (fatal) result.errors.push(fatal);
  killAll();
  for (const b of [...openSockets]) { try { b.close(); } catch { /* closed */ } }
  result.exit_code = code;
  result.summary = summarize();
  if (opts.jsonOut) {
    fs.mkdirSync(path.dirname(path.resolve(opts.jsonOut)), { recursive: true });
    fs.writeFileSync(opts.jsonOut, JSON.stringify(result, null, 1) + '\n');
  }
  console.log(table(result.summary));
  if (fatal) console.error(`[bench] ${fatal}`);
  // Sockets of socket.io-client may keep the loop alive; the result is written, so leave.
  killAndExit(code);
}

main().catch((err) => finish(1, `harness error: ${err && err.stack ? err.stack : err}`));
