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
//
// What it shares with curve.mjs (options, Server, browsers, /proc, the 60 Hz emitters) is in lib.mjs.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  now, round, sleep, tick, log, configureLog, num, commonDefaults, walkOptions, checkCommon,
  COMMON_USAGE, installExitHandlers, parseOrExit, finishRun, openSockets, describe, procStatus,
  freePort, portIsFree, Server, connectBrowser, connectWithRetry, parseEntry, Load,
  broadcastLoad, metadata,
} from './lib.mjs';

const FORMAT = 1; // bump when the result layout changes

const USAGE = `usage: node entryhw_bench.mjs [options]
${COMMON_USAGE}
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

function parseArgs(argv) {
  const o = {
    ...commonDefaults(), warmup: 200, pacedN: 2000, paceMs: 1, flood: 20000, steadyBrowsers: 20,
    steadyHz: 60, steadyS: 10, steadyWarmupS: 1, cloudN: 1000, skip: new Set(),
  };
  walkOptions(argv, o, {
    usage: USAGE,
    skippable: ['paced', 'flood', 'steady', 'cloud'],
    own: (a, val) => {
      switch (a) {
        case '--warmup': o.warmup = num(a, val(), { int: true }); break;
        case '--paced-n': o.pacedN = num(a, val(), { int: true, min: 1 }); break;
        case '--pace-ms': o.paceMs = num(a, val()); break;
        case '--flood': o.flood = num(a, val(), { int: true, min: 1 }); break;
        case '--steady-browsers': o.steadyBrowsers = num(a, val(), { int: true, min: 1 }); break;
        case '--steady-hz': o.steadyHz = num(a, val(), { min: 0.1 }); break;
        case '--steady-s': o.steadyS = num(a, val(), { min: 0.1 }); break;
        case '--steady-warmup-s': o.steadyWarmupS = num(a, val()); break;
        case '--cloud-n': o.cloudN = num(a, val(), { int: true, min: 1 }); break;
        default: return false;
      }
      return true;
    },
  });
  checkCommon(o);
  if (o.steadyBrowsers > 200) throw new Error('--steady-browsers is at most 200');
  if (o.steadyHz > 1000) throw new Error('--steady-hz is at most 1000');
  if (o.steadyS + o.steadyWarmupS > 120) throw new Error('steady phase longer than 120 s');
  if (o.flood > 1_000_000 || o.pacedN > 100_000 || o.cloudN > 100_000 || o.warmup > 10_000) {
    throw new Error('counts are capped: --flood 1e6, --paced-n/--cloud-n 1e5, --warmup 1e4');
  }
  return o;
}

const opts = parseOrExit('entryhw_bench', parseArgs, USAGE);

configureLog('[bench]', opts.quiet);
installExitHandlers('[bench]');

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
  result.meta = metadata(opts, port, logDir);
  result.options = {
    warmup: opts.warmup, paced_n: opts.pacedN, pace_ms: opts.paceMs, flood: opts.flood,
    steady_browsers: opts.steadyBrowsers, steady_hz: opts.steadyHz, steady_s: opts.steadyS,
    steady_warmup_s: opts.steadyWarmupS, cloud_n: opts.cloudN, skip: [...opts.skip],
  };

  // -- startup
  const s1 = new Server('server1', port, logDir, opts);
  let main = null;
  const st = await phase('startup', 20000, async () => {
    s1.start();
    s1.send({ key: 'open' });
    const ready = await s1.waitMode(15000, (x) => new Error(
      `server exited (code ${x.code}, signal ${x.signal}) before it was ready; see ${s1.logPath}`));
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
    const load = new Load(opts.steadyHz);
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

      // One timer chain per emitter (the parent, then each browser): lib.mjs Load.
      const r = await broadcastLoad({
        server: s1, browsers, load, tag: 'st', warmupS: opts.steadyWarmupS,
        measureS: opts.steadyS,
      });
      const m = r.m;
      const wall = m.wall;
      const rssEnd = procStatus(s1.pid).rss_kb;
      const ticks = r.sentB / browsers.length;
      return {
        browsers: browsers.length,
        hz: opts.steadyHz,
        measured_s: round(wall, 3),
        connect_all_ms: round(connectAllMs),
        achieved_hz: round(ticks / wall, 2),
        ticks_skipped: m.skipped,
        b2p: r.b2p,
        p2b: r.p2b,
        server_cpu_frac: round(m.serverCpu, 3),
        harness_cpu_frac: round(m.harnessCpu, 3),
        // Everything else the machine ran meanwhile (other processes: noise), in cores.
        others_cpu_frac: round(m.othersCpu, 3),
        rss_start_kb: rssStart,
        rss_end_kb: rssEnd,
      };
    });
    load.stop();
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
      s2 = new Server('server2', port, logDir, opts);
      s2.start();
      s2.send({ key: 'open' });
      const mode = await s2.waitMode(15000, (x) => new Error(
        `server2 exited (code ${x.code}) before reporting a mode`));
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

// ---------------------------------------------------------------- output

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
  put('steady_b2p_max_ms', p.steady?.b2p?.max_ms);
  put('steady_p2b_p50_ms', p.steady?.p2b?.p50_ms);
  put('steady_p2b_p99_ms', p.steady?.p2b?.p99_ms);
  put('steady_p2b_max_ms', p.steady?.p2b?.max_ms);
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

function finish(code, fatal) {
  finishRun({
    result, code, fatal, jsonOut: opts.jsonOut, tag: '[bench]',
    complete: () => { result.summary = summarize(); },
    table: () => table(result.summary),
  });
}

main().catch((err) => finish(1, `harness error: ${err && err.stack ? err.stack : err}`));
