#!/usr/bin/env node
// curve.mjs: one run of the cost curves of an Entry hardware bridge server.
//
// Like entryhw_bench.mjs this process is every peer (parents and browsers, one clock), and
// every point runs on FRESH server processes on a free 127.0.0.1 port:
//   host point N    one server, N browsers; each browser emits 'message' at HZ and the parent
//                   sends at HZ (the server delivers each send to all N browsers)
//   cloud point N   a host (runningModeChanged 2) and N copies on the same port (each
//                   runningModeChanged 3, addRoomId curve-room-i); browser i joins the host
//                   with roomId curve-room-i; at HZ each way copy i's parent -> host ->
//                   browser i and browser i -> host -> copy i -> parent i. The host's own
//                   parent only opens it and sends nothing; whatever reaches it is misrouted.
// Measured over a window (after a warm-up): server CPU (utime + stime over wall, in cores),
// messages, CPU per message, one-way latencies, lost, misrouted, RSS, the harness's own CPU
// and the rest of the machine's.
//
// Every wait is bounded in time, every loop in count, every point in time; a global timeout
// ends the run; spawned servers are killed by PID (and their own process group) on every exit
// path. Loopback only. Output: a table on stdout, the result as JSON with --json-out FILE.
// Exit status: 0 ran to the end (point errors are inside the result), 1 fatal, 2 usage,
// 3 global timeout.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  now, round, sleep, log, configureLog, num, commonDefaults, walkOptions, checkCommon,
  COMMON_USAGE, installExitHandlers, parseOrExit, finishRun, describe, procStatus,
  freePort, portIsFree, Server, connectWithRetry, parseEntry, Load, broadcastLoad, metadata,
} from './lib.mjs';

const FORMAT = 1; // bump when the result layout changes

const USAGE = `usage: node curve.mjs [options]
${COMMON_USAGE}
  --port N               use this port for every point (it must be free); 0 picks a free
                         one per point [default: 0]
  --cwd DIR              working directory of the servers [default: current]
  --label NAME           free text stored in the result [default: program name]
  --json-out FILE        write the result JSON there
  --log-dir DIR          server stdout/stderr go to DIR/<point>-<server>.log [default: a temp dir]
  --browsers LIST        host curve: browsers per point [1,5,20,50,100]
  --copies LIST          cloud curve: client copies per point (one browser each) [1,5,10,20]
  --hz HZ                messages per second per emitter (each browser, each parent) [60]
  --warmup-s S           seconds of load before the measured window, not counted [1]
  --measure-s S          measured seconds per point [5]
  --batch N              browsers connected / copies started in parallel [10]
  --skip LIST            comma list of: host,cloud
  --global-timeout S     hard cap for the whole run [900]
  -q, --quiet            no progress on stderr
  -h, --help`;

// ---------------------------------------------------------------- options

function parseList(a, v, max) {
  const xs = v.split(',').map((x) => x.trim()).filter(Boolean).map((x) => num(a, x, { int: true, min: 1 }));
  if (!xs.length || xs.length > 12) throw new Error(`${a} takes 1 to 12 numbers`);
  if (xs.some((x) => x > max)) throw new Error(`${a}: at most ${max}`);
  return xs;
}

function parseArgs(argv) {
  const o = {
    ...commonDefaults(), globalTimeout: 900, browsers: [1, 5, 20, 50, 100], copies: [1, 5, 10, 20],
    hz: 60, warmupS: 1, measureS: 5, batch: 10, skip: new Set(),
  };
  walkOptions(argv, o, {
    usage: USAGE,
    skippable: ['host', 'cloud'],
    own: (a, val) => {
      switch (a) {
        case '--browsers': o.browsers = parseList(a, val(), 200); break;
        case '--copies': o.copies = parseList(a, val(), 50); break;
        case '--hz': o.hz = num(a, val(), { min: 0.1 }); break;
        case '--warmup-s': o.warmupS = num(a, val()); break;
        case '--measure-s': o.measureS = num(a, val(), { min: 0.1 }); break;
        case '--batch': o.batch = num(a, val(), { int: true, min: 1 }); break;
        default: return false;
      }
      return true;
    },
  });
  checkCommon(o);
  if (o.hz > 1000) throw new Error('--hz is at most 1000');
  if (o.measureS + o.warmupS > 120) throw new Error('warm-up + measured window longer than 120 s');
  if (o.batch > 100) throw new Error('--batch is at most 100');
  return o;
}

const opts = parseOrExit('curve', parseArgs, USAGE);

configureLog('[curve]', opts.quiet);
installExitHandlers('[curve]');

const range = (n) => Array.from({ length: n }, (_, i) => i);
const sum = (xs) => xs.reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------- one point

const result = {
  format: FORMAT,
  tool: 'curve',
  meta: {},
  options: {},
  host: [],
  cloud: [],
  errors: [],
};

let logDir = null;

// What one point has started, so that it can be stopped whatever happened (error, cap).
class Point {
  constructor(name) {
    this.name = name;
    this.servers = [];
    this.browsers = [];
    this.load = null;
    this.aborted = false;
  }

  server(name, port) {
    if (this.aborted) throw new Error(`${this.name}: stopped`);
    const s = new Server(`${this.name}-${name}`, port, logDir, opts);
    this.servers.push(s);
    s.start();
    s.send({ key: 'open' });
    return s;
  }

  newLoad(hz) {
    if (this.aborted) throw new Error(`${this.name}: stopped`);
    this.load = new Load(hz);
    return this.load;
  }

  // Waits for the server's first runningModeChanged, which must be `want`.
  async mode(s, want, ms) {
    const ev = await s.waitMode(ms, (x) => new Error(
      `${s.name} exited (code ${x.code}, signal ${x.signal}) before reporting a mode; see ${s.logPath}`));
    if (ev.key === '_spawn_error') throw new Error(`cannot spawn ${s.name}: ${ev.value}`);
    if (ev.value !== want) throw new Error(`${s.name}: runningModeChanged ${ev.value}, not ${want}`);
    return ev;
  }

  // Browsers in batches of --batch, each with retries for up to 10 s.
  async connect(port, rooms) {
    const out = [];
    for (let i = 0; i < rooms.length; i += opts.batch) {
      const batch = rooms.slice(i, i + opts.batch);
      out.push(...await Promise.all(batch.map(async (room) => {
        const b = await connectWithRetry(port, room, now() + 10000);
        if (this.aborted) { b.close(); throw new Error(`${this.name}: stopped`); }
        this.browsers.push(b);
        return b;
      })));
    }
    return out;
  }

  // Emitters off, browsers closed, then every server SIGTERM (then SIGKILL): copies first, host last.
  async cleanup() {
    this.aborted = true;
    if (this.load) this.load.stop();
    for (const b of this.browsers) b.close();
    const [host, ...rest] = this.servers;
    const stops = await Promise.all(rest.map((s) => s.stop(5000)));
    if (host) stops.push(await host.stop(5000));
    const how = {};
    for (const s of stops) how[s.how || 'already_exited'] = (how[s.how || 'already_exited'] || 0) + 1;
    return {
      servers: stops.length,
      how,
      exit_ms_max: round(Math.max(0, ...stops.map((s) => s.exit_ms ?? 0))),
    };
  }
}

async function pointPort() {
  if (!opts.port) return freePort();
  for (let i = 0; i < 50; i++) {
    if (await portIsFree(opts.port)) return opts.port;
    await sleep(100);
  }
  throw new Error(`port ${opts.port} is taken`);
}

async function runPoint(list, kind, n, fn) {
  const name = `${kind}${n}`;
  const p = new Point(name);
  const t = now();
  const capMs = (opts.warmupS + opts.measureS) * 1000 + 60000 + 1000 * n;
  log(`${name}...`);
  let timer;
  let res;
  try {
    const cap = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`point ${name} over its ${capMs} ms cap`)), capMs);
    });
    res = await Promise.race([fn(p), cap]);
  } catch (err) {
    res = { error: err.message };
    result.errors.push(`${name}: ${err.message}`);
    log(`${name} failed: ${err.message}`);
  } finally {
    clearTimeout(timer);
  }
  res.stop = await p.cleanup();
  res.point_s = round((now() - t) / 1000, 2);
  list.push({ n, ...res });
  await sleep(300); // let the machine settle between points
}

// -- host point: one server, n browsers, HZ both ways
async function hostPoint(p, n) {
  const port = await pointPort();
  const s = p.server('server', port);
  const ready = await p.mode(s, 2, 15000);
  const tc = now();
  const browsers = await p.connect(port, range(n).map((i) => `curve-host-${i}`));
  const connectAllMs = now() - tc;
  await sleep(200);
  const rssStart = procStatus(s.pid).rss_kb;

  const load = p.newLoad(opts.hz);
  const r = await broadcastLoad({
    server: s, browsers, load, tag: 'cv', warmupS: opts.warmupS, measureS: opts.measureS,
  });
  const m = r.m;
  const st = procStatus(s.pid);
  const msgs = r.gotB + r.gotP;
  return {
    browsers: n,
    hz: opts.hz,
    port,
    ready_ms: round(ready.t - s.t0),
    connect_all_ms: round(connectAllMs),
    measured_s: round(m.wall, 3),
    achieved_hz: round(r.sentB / n / m.wall, 2),
    ticks_skipped: m.skipped,
    msgs,
    msgs_per_s: round(msgs / m.wall, 1),
    server_cpu_cores: round(m.serverCpu, 4),
    cpu_us_per_msg: m.serverCpu == null || !msgs ? null : round(m.serverCpu * m.wall / msgs * 1e6, 2),
    b2p: r.b2p,
    p2b: r.p2b,
    drain_ms: m.drainWaits * 100,
    rss_start_kb: rssStart,
    rss_end_kb: st.rss_kb,
    hwm_kb: st.hwm_kb,
    harness_cpu_cores: round(m.harnessCpu, 4),
    others_cpu_cores: round(m.othersCpu, 4),
    harness_rss_kb: Math.round(process.memoryUsage().rss / 1024),
  };
}

// -- cloud point: a host, n copies, one browser per copy on the host, HZ both ways per pair
async function cloudPoint(p, n) {
  const port = await pointPort();
  const host = p.server('host', port);
  await p.mode(host, 2, 15000);
  const sinceHost = host.events.length;
  const rooms = range(n).map((i) => `curve-room-${i}`);
  const copies = new Array(n);
  const tSpawn = now();
  let modeMsMax = 0;
  for (let i = 0; i < n; i += opts.batch) {
    await Promise.all(range(Math.min(opts.batch, n - i)).map(async (k) => {
      const j = i + k;
      const c = p.server(`copy${j}`, port);
      const ev = await p.mode(c, 3, 20000);
      modeMsMax = Math.max(modeMsMax, ev.t - c.t0);
      c.send({ key: 'addRoomId', value: rooms[j] });
      copies[j] = c;
    }));
  }
  const spawnAllMs = now() - tSpawn;
  await host.waitFor((e) => e.key === 'cloudModeChanged' && e.value === 1, 10000,
    'cloudModeChanged 1 (host sees a copy)', sinceHost);
  const tc = now();
  const browsers = await p.connect(port, rooms);
  const connectAllMs = now() - tc;

  // Sinks: every pair checks that what it gets was meant for it.
  const load = p.newLoad(opts.hz);
  const b2p = [];
  const p2b = [];
  let sentB = 0;
  let sentP = 0;
  let gotB = 0;
  let gotP = 0;
  const misrouted = { probe: 0, load: 0, host_parent: 0 };
  let stage = 'probe';
  const probeB2P = new Uint8Array(n); // browser j -> parent j seen
  const probeP2B = new Uint8Array(n); // parent j -> browser j seen
  const ours = (d) => d && (d.k === 'cv' || d.k === 'pr');
  copies.forEach((c, j) => {
    c.onData = (v) => {
      const d = parseEntry(v);
      if (!ours(d)) return;
      if (d.c !== j || d.dir !== 'b2p') { misrouted[stage]++; return; }
      if (d.k === 'pr') probeB2P[j] = 1;
      else if (load.has(d.t)) { b2p.push(now() - d.t); gotB++; }
    };
  });
  browsers.forEach((b, j) => {
    b.onMessage = (msg) => {
      const d = msg && msg.data;
      if (!ours(d)) return;
      if (d.c !== j || d.dir !== 'p2b') { misrouted[stage]++; return; }
      if (d.k === 'pr') probeP2B[j] = 1;
      else if (load.has(d.t)) { p2b.push(now() - d.t); gotP++; }
    };
  });
  host.onData = (v) => { if (ours(parseEntry(v))) misrouted.host_parent++; };

  // Probe until every relay works both ways (matchTarget needs a moment to land).
  const tp = now();
  const probeDeadline = tp + 15000;
  let probes = 0;
  for (let i = 0; i < 300 && now() < probeDeadline; i++) {
    let missing = 0;
    for (let j = 0; j < n; j++) {
      if (!probeP2B[j]) { missing++; copies[j].send({ key: 'send', value: { k: 'pr', c: j, dir: 'p2b' } }); }
      if (!probeB2P[j]) { missing++; browsers[j].emit({ k: 'pr', c: j, dir: 'b2p' }); }
    }
    if (!missing) break;
    probes++;
    await sleep(50);
  }
  const notReady = range(n).filter((j) => !probeP2B[j] || !probeB2P[j]);
  if (notReady.length) {
    throw new Error(`${notReady.length} of ${n} relays not working both ways within 15 s (first: ${rooms[notReady[0]]})`);
  }
  const relayReadyMs = now() - tp;
  await sleep(100);
  stage = 'load';
  const all = [host, ...copies];
  const rssStart = sum(all.map((s) => procStatus(s.pid).rss_kb ?? 0));

  const fires = [];
  for (let j = 0; j < n; j++) {
    fires.push(() => {
      const t = now();
      if (load.has(t)) sentP++;
      copies[j].send({ key: 'send', value: { k: 'cv', c: j, dir: 'p2b', t } });
    });
    fires.push(() => {
      const t = now();
      if (load.has(t)) sentB++;
      browsers[j].emit({ k: 'cv', c: j, dir: 'b2p', t });
    });
  }
  const m = await load.run({
    fires,
    warmupS: opts.warmupS,
    measureS: opts.measureS,
    pids: all.map((s) => s.pid),
    pending: () => gotB < sentB || gotP < sentP,
  });
  const rss = all.map((s) => procStatus(s.pid).rss_kb);
  const msgs = gotB + gotP;
  const hostCpu = m.perPid[0];
  return {
    copies: n,
    hz: opts.hz,
    port,
    spawn_all_ms: round(spawnAllMs),
    copy_mode_ms_max: round(modeMsMax),
    connect_all_ms: round(connectAllMs),
    relay_ready_ms: round(relayReadyMs),
    probe_rounds: probes,
    measured_s: round(m.wall, 3),
    achieved_hz: round(sentB / n / m.wall, 2),
    ticks_skipped: m.skipped,
    msgs,
    msgs_per_s: round(msgs / m.wall, 1),
    total_cpu_cores: round(m.serverCpu, 4),
    host_cpu_cores: round(hostCpu, 4),
    copies_cpu_cores: m.serverCpu == null ? null : round(m.serverCpu - hostCpu, 4),
    cpu_us_per_msg: m.serverCpu == null || !msgs ? null : round(m.serverCpu * m.wall / msgs * 1e6, 2),
    p2b: { ...describe(p2b), sent: sentP, lost: sentP - gotP },
    b2p: { ...describe(b2p), sent: sentB, lost: sentB - gotB },
    misrouted: misrouted.load + misrouted.host_parent,
    misrouted_detail: misrouted,
    drain_ms: m.drainWaits * 100,
    rss_total_start_kb: rssStart,
    rss_total_kb: rss.some((x) => x == null) ? null : sum(rss),
    host_rss_kb: rss[0],
    copy_rss_kb_max: n ? Math.max(...rss.slice(1).map((x) => x ?? 0)) : null,
    harness_cpu_cores: round(m.harnessCpu, 4),
    others_cpu_cores: round(m.othersCpu, 4),
    harness_rss_kb: Math.round(process.memoryUsage().rss / 1024),
  };
}

// ---------------------------------------------------------------- run

async function main() {
  const t0run = now();
  const globalTimer = setTimeout(() => {
    result.errors.push(`global timeout (${opts.globalTimeout} s)`);
    console.error(`[curve] global timeout after ${opts.globalTimeout} s`);
    finish(3);
  }, opts.globalTimeout * 1000);

  logDir = opts.logDir || fs.mkdtempSync(path.join(os.tmpdir(), 'entryhw-curve-'));
  fs.mkdirSync(logDir, { recursive: true });
  if (opts.port && !(await portIsFree(opts.port))) return finish(1, `port ${opts.port} is taken`);
  result.meta = metadata(opts, opts.port || null, logDir);
  result.options = {
    browsers: opts.browsers, copies: opts.copies, hz: opts.hz, warmup_s: opts.warmupS,
    measure_s: opts.measureS, batch: opts.batch, skip: [...opts.skip],
  };
  if (!opts.skip.has('host')) {
    for (const n of opts.browsers) await runPoint(result.host, 'host', n, (p) => hostPoint(p, n));
  }
  if (!opts.skip.has('cloud')) {
    for (const n of opts.copies) await runPoint(result.cloud, 'cloud', n, (p) => cloudPoint(p, n));
  }
  clearTimeout(globalTimer);
  result.wall_s = round((now() - t0run) / 1000, 2);
  result.meta.host.loadavg_1m_end = round(os.loadavg()[0], 2);
  return finish(0);
}

// ---------------------------------------------------------------- output

const f = (v, d = 3) => (v == null ? '-' : String(round(v, d)));
const mb = (kb) => (kb == null ? '-' : (kb / 1024).toFixed(1));

function table() {
  const cols = (cells, widths) => cells.map((c, i) => String(c).padStart(widths[i])).join(' ');
  const lines = [
    `entryhw curve: ${result.meta.label} (${result.meta.command})`,
    `${result.meta.date}  ${result.meta.host?.cpu_model} x${result.meta.host?.cpus}  node ${result.meta.node}` +
      `  server ${result.meta.server_version ?? '?'}  runtime ${result.meta.runtime?.version ?? '?'}` +
      `  ${opts.hz} Hz, ${opts.measureS} s windows`,
  ];
  if (result.host.length) {
    const w = [8, 9, 9, 8, 8, 8, 8, 8, 9, 8, 8, 7];
    lines.push('', 'host: one server, N browsers',
      cols(['browsers', 'cpu', 'msg/s', 'us/msg', 'b2p p50', 'b2p p99', 'p2b p50', 'p2b p99',
        'lost', 'harness', 'others', 'RSS MB'], w));
    for (const r of result.host) {
      if (r.error) { lines.push(`${String(r.n).padStart(8)}  error: ${r.error}`); continue; }
      lines.push(cols([r.n, f(r.server_cpu_cores), f(r.msgs_per_s, 0), f(r.cpu_us_per_msg, 1),
        f(r.b2p.p50_ms), f(r.b2p.p99_ms), f(r.p2b.p50_ms), f(r.p2b.p99_ms),
        `${r.b2p.lost}/${r.p2b.lost}`, f(r.harness_cpu_cores), f(r.others_cpu_cores), mb(r.rss_end_kb)], w));
    }
  }
  if (result.cloud.length) {
    const w = [8, 9, 9, 9, 8, 8, 8, 8, 9, 9, 8, 8];
    lines.push('', 'cloud: 1 host + N copies, one browser each',
      cols(['copies', 'cpu', 'host cpu', 'msg/s', 'us/msg', 'p2b p99', 'b2p p99', 'b2p max',
        'lost', 'misrouted', 'RSS MB', 'harness'], w));
    for (const r of result.cloud) {
      if (r.error) { lines.push(`${String(r.n).padStart(8)}  error: ${r.error}`); continue; }
      lines.push(cols([r.n, f(r.total_cpu_cores), f(r.host_cpu_cores), f(r.msgs_per_s, 0),
        f(r.cpu_us_per_msg, 1), f(r.p2b.p99_ms), f(r.b2p.p99_ms), f(r.b2p.max_ms),
        `${r.b2p.lost}/${r.p2b.lost}`, r.misrouted, mb(r.rss_total_kb), f(r.harness_cpu_cores)], w));
    }
  }
  lines.push('', `wall ${result.wall_s ?? '?'} s`);
  if (result.errors.length) lines.push('errors:', ...result.errors.map((e) => `  ${e}`));
  return lines.join('\n');
}

function finish(code, fatal) {
  finishRun({ result, code, fatal, jsonOut: opts.jsonOut, tag: '[curve]', table });
}

main().catch((err) => finish(1, `harness error: ${err && err.stack ? err.stack : err}`));
