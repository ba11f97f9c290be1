// lib.mjs: what the bench harnesses (entryhw_bench.mjs, curve.mjs) share.
//
//   options     splitCommand, num, commonDefaults / commonOption / walkOptions / checkCommon (--cmd, --port-via, --skip, --help, ...)
//   logging     configureLog, log
//   cleanup     spawned, openSockets, killAll, killAndExit, installExitHandlers
//   statistics  CDF_P, quantile, describe
//   /proc       procStatus, cpuSeconds, machineBusySeconds, CLK_TCK
//   ports       freePort, portIsFree (127.0.0.1 only)
//   Server      one server process, spawned the way Entry Hardware does (IPC channel, detached)
//   browsers    connectBrowser, connectWithRetry, entryMessage, parseEntry (socket.io-client 2.5.0)
//   Load        fixed-rate emitters on their own timer chains, and one measured window of them
//   broadcastLoad  one server, N browsers, the parent and every browser at the load's rate
//   runs        parseOrExit, finishRun (write the result, print the table, exit)
//   metadata    what ran where (command, resolved program, server --version, interpreter)

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createRequire } from 'node:module';
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';

const require = createRequire(import.meta.url);
export const io = require('socket.io-client');
export const SIO_CLIENT_VERSION = require('socket.io-client/package.json').version;

export { sleep, tick };
export const now = () => performance.now();
export const round = (x, d = 3) => (x == null || !Number.isFinite(x) ? x : Math.round(x * 10 ** d) / 10 ** d);

// ---------------------------------------------------------------- logging

const logState = { tag: '[bench]', quiet: false };

export function configureLog(tag, quiet) {
  logState.tag = tag;
  logState.quiet = quiet;
}

export const log = (...a) => { if (!logState.quiet) console.error(logState.tag, ...a); };

// ---------------------------------------------------------------- options

// A command line split like a shell would (quotes, backslashes), without running a shell.
export function splitCommand(line) {
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

export function num(a, v, { int = false, min = 0 } = {}) {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) {
    throw new Error(`bad value for ${a}: ${v}`);
  }
  return n;
}

export const COMMON_USAGE = `  --cmd "CMD ARGS"       server command line, split like a shell (no shell runs it)
                         [default: entryhw-server]
  --port-via auto|arg|env  how the server learns its port: arg appends "--port N", env sets
                         ENTRY_PORT=N only (ENTRY_PORT is always set); auto = arg when the
                         program is entryhw-server, else env [default: auto]`;

export const commonDefaults = () => ({
  cmd: 'entryhw-server', portVia: 'auto', port: 0, cwd: process.cwd(), label: null, jsonOut: null,
  logDir: null, globalTimeout: 120, quiet: false,
});

// The options both harnesses take; false if `a` is not one of them. val() consumes the value.
export function commonOption(o, a, val) {
  switch (a) {
    case '--cmd': o.cmd = val(); break;
    case '--port-via': o.portVia = val(); break;
    case '--port': o.port = num(a, val(), { int: true }); if (o.port > 65535) throw new Error('--port > 65535'); break;
    case '--cwd': o.cwd = val(); break;
    case '--label': o.label = val(); break;
    case '--json-out': o.jsonOut = val(); break;
    case '--log-dir': o.logDir = val(); break;
    case '--global-timeout': o.globalTimeout = num(a, val(), { min: 1 }); break;
    case '-q': case '--quiet': o.quiet = true; break;
    default: return false;
  }
  return true;
}

// Walk `argv` into `o`: the common options, `--skip LIST` (of `skippable`), -h/--help (prints
// `usage`, exits 0), and the harness's own through `own(a, val)`, which says whether it knew `a`.
export function walkOptions(argv, o, { usage, skippable, own }) {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value for ${a}`);
      return argv[++i];
    };
    if (commonOption(o, a, val)) continue;
    if (a === '--skip') {
      for (const s of val().split(',').map((x) => x.trim()).filter(Boolean)) {
        if (!skippable.includes(s)) throw new Error(`cannot skip ${s}`);
        o.skip.add(s);
      }
    } else if (a === '-h' || a === '--help') {
      console.log(usage);
      process.exit(0);
    } else if (!own(a, val)) {
      throw new Error(`unknown argument ${a}`);
    }
  }
}

export function checkCommon(o) {
  if (!['auto', 'arg', 'env'].includes(o.portVia)) throw new Error('--port-via is auto, arg or env');
  o.argv = splitCommand(o.cmd);
  if (!o.argv.length) throw new Error('--cmd is empty');
}

// ---------------------------------------------------------------- cleanup

export const spawned = new Set(); // Server objects whose process may still run
export const openSockets = new Set();

export function killAll() {
  for (const s of spawned) s.kill('SIGKILL');
}

// Kill what is left, give Node up to 1 s to reap it (no zombies), then exit.
export function killAndExit(code) {
  killAll();
  const t0 = Date.now();
  const poll = setInterval(() => {
    if (!spawned.size || Date.now() - t0 > 1000) {
      clearInterval(poll);
      process.exit(code);
    }
  }, 10);
}

// Every way out kills the spawned servers: exit, signals, uncaught errors.
export function installExitHandlers(tag) {
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.error(`${tag} ${sig}: killing the servers and stopping`);
      killAndExit(130);
    });
  }
  process.on('uncaughtException', (err) => {
    console.error(`${tag} uncaught:`, err && err.stack ? err.stack : err);
    killAndExit(1);
  });
  process.on('unhandledRejection', (err) => {
    console.error(`${tag} unhandled rejection:`, err && err.stack ? err.stack : err);
    killAndExit(1);
  });
}

// The options of `process.argv`, or the error and `usage` on stderr and exit status 2.
export function parseOrExit(name, parse, usage) {
  try {
    return parse(process.argv.slice(2));
  } catch (err) {
    console.error(`${name}: ${err.message}\n${usage}`);
    process.exit(2);
  }
}

// The end of a run, once: kill what is left, `complete()` the result, write it as JSON to
// `jsonOut`, print `table()`, then exit with `code`.
let finishing = false;
export function finishRun({ result, code, fatal, jsonOut, tag, complete = () => {}, table }) {
  if (finishing) return;
  finishing = true;
  if (fatal) result.errors.push(fatal);
  killAll();
  for (const b of [...openSockets]) { try { b.close(); } catch { /* closed */ } }
  result.exit_code = code;
  complete();
  if (jsonOut) {
    fs.mkdirSync(path.dirname(path.resolve(jsonOut)), { recursive: true });
    fs.writeFileSync(jsonOut, JSON.stringify(result, null, 1) + '\n');
  }
  console.log(table());
  if (fatal) console.error(`${tag} ${fatal}`);
  // Sockets of socket.io-client may keep the loop alive; the result is written, so leave.
  killAndExit(code);
}

// ---------------------------------------------------------------- statistics

// Probabilities at which every distribution is stored, for the CDF plots of run.py.
export const CDF_P = [];
for (let i = 0; i <= 100; i++) CDF_P.push(i / 100);
CDF_P.splice(100, 0, 0.995, 0.999);

export function quantile(sorted, p) {
  if (!sorted.length) return null;
  const x = p * (sorted.length - 1);
  const lo = Math.floor(x);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

export function describe(samples) {
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

export function procStatus(pid) {
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

export let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { timeout: 2000 }).toString().trim()) || 100;
} catch { /* keep 100 */ }

// Busy CPU seconds of the whole machine (all cores), from the first line of /proc/stat.
export function machineBusySeconds() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal (guest is inside user)
    return (total - f[3] - f[4]) / CLK_TCK; // minus idle, iowait
  } catch {
    return null;
  }
}

export function cpuSeconds(pid) {
  try {
    const txt = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = txt.slice(txt.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime, stime: fields 14, 15
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- ports

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function portIsFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

// ---------------------------------------------------------------- the server under test

// cmd: {argv, portVia, cwd} (the parsed options of either harness).
export class Server {
  constructor(name, port, logDir, cmd) {
    this.name = name;
    this.port = port;
    this.cmd = cmd;
    this.logPath = path.join(logDir, `${name}.log`);
    this.events = []; // non-'data' messages from the server: {t, key, value}
    this.waiters = [];
    this.onData = null;
    this.dataCount = 0;
    this.exitInfo = null;
    this.proc = null;
  }

  start() {
    const [file, ...args] = this.cmd.argv;
    const viaArg = this.cmd.portVia === 'arg' ||
      (this.cmd.portVia === 'auto' && path.basename(file) === 'entryhw-server');
    if (viaArg) args.push('--port', String(this.port));
    const logFd = fs.openSync(this.logPath, 'a');
    this.t0 = now();
    this.proc = spawn(file, args, {
      cwd: this.cmd.cwd,
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

  // The first runningModeChanged (or _spawn_error) event; throws exitError(exitInfo) if the
  // process exits first.
  waitMode(ms, exitError) {
    return Promise.race([
      this.waitFor((e) => e.key === 'runningModeChanged' || e.key === '_spawn_error', ms,
        'runningModeChanged'),
      this.exited.then((x) => { throw exitError(x); }),
    ]);
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

export const entryMessage = (obj) => ({ data: JSON.stringify(obj), mode: 0, type: 'utf8' });

export function connectBrowser(port, roomId, timeoutMs = 3000) {
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

export async function connectWithRetry(port, roomId, deadline) {
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
export const parseEntry = (payload) => {
  if (!payload || typeof payload.data !== 'string') return null;
  try { return JSON.parse(payload.data); } catch { return null; }
};

// ---------------------------------------------------------------- fixed-rate load

// Emitters at `hz` each, one timer chain per emitter, their phases spread evenly over the
// period; a tick more than one period late is skipped (counted in `skipped`), not sent in a
// burst. has(t) says whether a send time t is inside the measured window.
export class Load {
  constructor(hz) {
    this.period = 1000 / hz;
    this.t0 = Infinity;
    this.t1 = Infinity;
    this.skipped = 0;
    this.stopped = false;
    this.chains = [];
  }

  has(t) { return t >= this.t0 && t < this.t1; }

  start(fires, start) {
    const period = this.period;
    fires.forEach((fire, i) => {
      const e = { k: 0, offset: (i / fires.length) * period, timer: null };
      const next = () => {
        if (this.stopped) return;
        const due = start + e.offset + e.k * period;
        e.timer = setTimeout(() => {
          if (this.stopped) return;
          const late = now() - due;
          if (late > period) {
            const miss = Math.floor(late / period);
            this.skipped += miss;
            e.k += miss;
          }
          fire();
          e.k++;
          next();
        }, Math.max(0, due - now()));
      };
      this.chains.push(e);
      next();
    });
  }

  stop() {
    this.stopped = true;
    for (const e of this.chains) clearTimeout(e.timer);
  }

  // Start `fires` 50 ms from now, let them run warmupS, measure measureS: the CPU of `pids`
  // (utime + stime over wall time, in cores, each and summed), the harness's own CPU and the
  // rest of the machine's. Then stop the emitters and wait (at most drainTries x 100 ms)
  // while pending() says messages of the window are still on their way.
  async run({ fires, warmupS, measureS, pids, pending, drainTries = 30 }) {
    const start = now() + 50;
    this.start(fires, start);
    this.t0 = start + warmupS * 1000;
    await sleep(Math.max(0, this.t0 - now()));
    const cpuS0 = pids.map(cpuSeconds);
    const cpuM0 = machineBusySeconds();
    const cpuH0 = process.cpuUsage();
    const w0 = now();
    this.t1 = w0 + measureS * 1000;
    await sleep(measureS * 1000);
    const w1 = now();
    this.stop();
    const cpuS1 = pids.map(cpuSeconds);
    const cpuM1 = machineBusySeconds();
    const cpuH = process.cpuUsage(cpuH0);
    const wall = (w1 - w0) / 1000;
    const perPid = pids.map((_, i) => (cpuS0[i] == null || cpuS1[i] == null ? null
      : (cpuS1[i] - cpuS0[i]) / wall));
    const serverCpu = perPid.some((x) => x == null) ? null : perPid.reduce((a, b) => a + b, 0);
    const harnessCpu = (cpuH.user + cpuH.system) / 1e6 / wall;
    // Everything else the machine ran meanwhile (other processes: noise), in cores.
    const othersCpu = cpuM0 == null || serverCpu == null ? null
      : Math.max(0, (cpuM1 - cpuM0) / wall - serverCpu - harnessCpu);
    // Drain: whatever was sent in the window may still be on its way.
    let drainWaits = 0;
    for (; drainWaits < drainTries && pending(); drainWaits++) await sleep(100);
    return { wall, perPid, serverCpu, harnessCpu, othersCpu, skipped: this.skipped, drainWaits };
  }
}

// One server and its browsers under `load`: the parent sends `{k: tag, seq, t}` at the load's
// rate, which the server delivers to every browser, and every browser emits `{k: tag, b, t}`
// at it. One-way latency of what was sent in the measured window, both ways, lost counts, and
// Load.run's figures (`m`).
export async function broadcastLoad({ server, browsers, load, tag, warmupS, measureS }) {
  const n = browsers.length;
  const b2p = [];
  const p2b = [];
  let sentB = 0;
  let sentP = 0;
  let gotB = 0;
  let gotP = 0;
  server.onData = (v) => {
    const d = parseEntry(v);
    if (d && d.k === tag && load.has(d.t)) { b2p.push(now() - d.t); gotB++; }
  };
  for (const b of browsers) {
    b.onMessage = (msg) => {
      const d = msg && msg.data;
      if (d && d.k === tag && load.has(d.t)) { p2b.push(now() - d.t); gotP++; }
    };
  }
  const m = await load.run({
    fires: [
      () => {
        const t = now();
        if (load.has(t)) sentP++;
        server.send({ key: 'send', value: { k: tag, seq: sentP, t } });
      },
      ...browsers.map((b, i) => () => {
        const t = now();
        if (load.has(t)) sentB++;
        b.emit({ k: tag, b: i, t });
      }),
    ],
    warmupS,
    measureS,
    pids: [server.pid],
    pending: () => gotB < sentB || gotP < sentP * n,
  });
  return {
    m,
    sentB,
    gotB,
    gotP,
    b2p: { ...describe(b2p), sent: sentB, lost: sentB - gotB },
    p2b: { ...describe(p2b), sent: sentP * n, lost: sentP * n - gotP },
  };
}

// ---------------------------------------------------------------- metadata

function firstLine(file, args) {
  try {
    const out = execFileSync(file, args, { timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
    return out.toString().trim().split('\n')[0] || null;
  } catch {
    return null;
  }
}

function which(file, cwd) {
  if (file.includes('/')) return path.resolve(cwd, file);
  for (const dir of (process.env.PATH || '').split(':')) {
    const p = path.join(dir || '.', file);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch { /* next */ }
  }
  return null;
}

// opts: the parsed options ({cmd, argv, label, cwd}).
export function metadata(opts, port, logDir) {
  const cpuinfo = (() => { try { return fs.readFileSync('/proc/cpuinfo', 'utf8'); } catch { return ''; } })();
  const model = (cpuinfo.match(/^model name\s*:\s*(.+)$/m) || [])[1] || os.cpus()[0]?.model || null;
  const file = opts.argv[0];
  const resolved = which(file, opts.cwd);
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
        interp = path.basename(words[0]) === 'env' ? which(words[1], opts.cwd) : words[0];
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
