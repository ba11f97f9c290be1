// What makes clients give up fastest on a port that has no TLS: a measurement, not a test.
//   node tls_refusal_probe.js [--runs 5] [--cap-ms 25000] [--no-entry]
// A throwaway TCP server on a free 127.0.0.1 port answers a TLS ClientHello (first byte 0x16)
// one of three ways:
//   alert   a fatal TLS alert, handshake_failure (record 15 03 01 00 02 02 28), then a close (FIN)
//   fin     a plain close (FIN), nothing written
//   silent  no answer at all (what entryhw did before issue 10)
// Anything else is piped to an in-process socket.io 2.5.1 server, so a page can still fall
// through to http://127.0.0.1:PORT on the same port as it would with entryhw.
// Clients, each sample on a fresh server: Chromium fetch() and WebSocket to
// https://127.0.0.1:PORT / wss://..., Node tls.connect, socket.io-client 2.5.0 (Node) with an
// https URL (reconnection off), and (unless --no-entry) the whole Entry page of
// tests/js/entry_page/ (entryjs's order and options) until it connects over http.
// Prints one JSON line per sample on stderr and a summary (median of the runs, ms) on stdout.
'use strict';
const net = require('net');
const http = require('http');
const tls = require('tls');
const { launchChromium, entryContext } = require('./browser');

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const RUNS = arg('--runs', 5);
const CAP_MS = arg('--cap-ms', 25000);
const ENTRY = !process.argv.includes('--no-entry');
const ENTRY_CAP_MS = 90000;
const ALERT = Buffer.from([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28]);
const MODES = ['alert', 'fin', 'silent'];

const log = (obj) => process.stderr.write(JSON.stringify(obj) + '\n');
const now = () => Number(process.hrtime.bigint() / 1000000n);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// A plain-HTTP socket.io 2 server the non-TLS connections are piped to.
async function backend() {
  const server = http.createServer();
  const io = require('socket.io-v2')(server);
  io.on('connection', () => {});
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: server.address().port, close: () => { io.close(); server.close(); } };
}

// The throwaway front: TLS is refused the chosen way, everything else goes to the backend.
async function front(mode, backendPort) {
  const sockets = new Set();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    sock.once('data', (first) => {
      if (first[0] === 0x16) {
        if (mode === 'alert') sock.end(ALERT);
        else if (mode === 'fin') sock.end();
        return; // silent: keep it open, read and ignore
      }
      sock.pause();
      const up = net.connect(backendPort, '127.0.0.1', () => {
        up.write(first);
        sock.pipe(up).pipe(sock);
        sock.resume();
      });
      up.on('error', () => sock.destroy());
      sock.on('close', () => up.destroy());
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    close: () => { for (const s of sockets) s.destroy(); server.close(); },
  };
}

// One sample: a fresh front, the client's time to error (or null past the cap).
async function sample(mode, backendPort, client) {
  const f = await front(mode, backendPort);
  try {
    return await client(f.port);
  } finally {
    f.close();
  }
}

function nodeTls(port) {
  return new Promise((resolve) => {
    const t0 = now();
    const done = (what) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(what === null ? { ms: null, what } : { ms: now() - t0, what });
    };
    const sock = tls.connect({ host: '127.0.0.1', port, servername: 'hw.playentry.org',
      rejectUnauthorized: false });
    sock.on('secureConnect', () => done('connected?!'));
    sock.on('error', (e) => done(e.code || e.message));
    sock.on('close', () => done('close'));
    const timer = setTimeout(() => done(null), CAP_MS);
  });
}

function nodeSocketIo(port) {
  const io = require('socket.io-client-v2');
  return new Promise((resolve) => {
    const t0 = now();
    const socket = io(`https://127.0.0.1:${port}`, { forceNew: true, reconnection: false,
      transports: ['websocket', 'polling'], rejectUnauthorized: false });
    const done = (what) => {
      clearTimeout(timer);
      socket.close();
      resolve(what === null ? { ms: null, what } : { ms: now() - t0, what });
    };
    socket.on('connect', () => done('connected?!'));
    socket.on('connect_error', (e) => done('connect_error: '
      + String(e && e.message !== undefined ? e.message : e)));
    socket.on('connect_timeout', () => done('connect_timeout'));
    const timer = setTimeout(() => done(null), CAP_MS);
  });
}

// In the page: time until fetch() rejects / the WebSocket reports its error.
function chromiumClient(page, kind) {
  return async (port) => {
    // The net:: error code: from the failed request (fetch) or the console line (WebSocket).
    const errors = [];
    const onConsole = (msg) => { if (msg.text().includes(`:${port}/`)) errors.push(msg.text()); };
    const onFailed = (req) => {
      if (req.url().includes(`:${port}/`)) errors.push(String(req.failure() && req.failure().errorText));
    };
    page.on('console', onConsole);
    page.on('requestfailed', onFailed);
    const r = await page.evaluate(async ({ port, kind, cap }) => {
      const t0 = performance.now();
      const result = (what) => ({ ms: Math.round(performance.now() - t0), what });
      if (kind === 'fetch') {
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), cap);
        try {
          await fetch(`https://127.0.0.1:${port}/socket.io/?EIO=3&transport=polling`,
            { signal: ctl.signal, cache: 'no-store' });
          return result('answered?!');
        } catch (e) {
          return ctl.signal.aborted ? { ms: null, what: null } : result(String(e));
        } finally {
          clearTimeout(timer);
        }
      }
      return new Promise((resolve) => {
        const ws = new WebSocket(`wss://127.0.0.1:${port}/socket.io/?EIO=3&transport=websocket`);
        const timer = setTimeout(() => { ws.close(); resolve({ ms: null, what: null }); }, cap);
        ws.onopen = () => { clearTimeout(timer); resolve(result('open?!')); };
        ws.onerror = () => { clearTimeout(timer); resolve(result('error')); };
      });
    }, { port, kind, cap: CAP_MS });
    await new Promise((resolve) => setTimeout(resolve, 100));
    page.off('console', onConsole);
    page.off('requestfailed', onFailed);
    const net = errors.map((t) => (t.match(/net::[A-Z_]+/) || [])[0]).find(Boolean);
    return { ms: r.ms, what: r.ms === null ? null : net || r.what }; // null: our own abort
  };
}

// The Entry page, entryjs's connection logic: time until it connects (over http://127.0.0.1).
function entryClient(context) {
  return async (port) => {
    const page = await context.newPage();
    try {
      let resolveConnect;
      const connected = new Promise((resolve) => { resolveConnect = resolve; });
      await page.exposeFunction('entryReport', (line) => {
        if (line.ev === 'connect' || line.ev === 'all_failed') resolveConnect(line);
      });
      await page.goto(`https://playentry.org/?port=${port}&roomId=probe`);
      const timer = new Promise((resolve) => setTimeout(() => resolve(null), ENTRY_CAP_MS));
      const line = await Promise.race([connected, timer]);
      if (!line) return { ms: null, what: null };
      const url = (line.url || '').replace(`:${port}`, ':PORT');
      return { ms: line.sinceStartMs, what: `${line.ev} ${url} ${line.transport || ''}`.trim() };
    } finally {
      await page.close();
    }
  };
}

async function series(name, mode, backendPort, client) {
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await sample(mode, backendPort, client);
    log({ client: name, mode, run: i + 1, ...r });
    runs.push(r);
  }
  const times = runs.map((r) => (r.ms === null ? Infinity : r.ms));
  return { client: name, mode, medianMs: median(times), runsMs: runs.map((r) => r.ms),
    what: [...new Set(runs.map((r) => r.what))] };
}

async function main() {
  const back = await backend();
  const browser = await launchChromium();
  const results = [];
  try {
    const context = await entryContext(browser);
    const fetchPage = await context.newPage();
    const wsPage = await context.newPage();
    await fetchPage.goto('https://playentry.org/blank.html').catch(() => {});
    await wsPage.goto('https://playentry.org/blank.html').catch(() => {});
    const clients = [
      ['chromium fetch', chromiumClient(fetchPage, 'fetch')],
      ['chromium WebSocket', chromiumClient(wsPage, 'websocket')],
      ['node tls.connect', nodeTls],
      ['node socket.io-client 2', nodeSocketIo],
    ];
    if (ENTRY) clients.push(['entry page (chromium)', entryClient(context)]);
    // Client kinds run side by side (each on its own fresh ports), the runs of one one by one.
    for (const mode of MODES) {
      results.push(...await Promise.all(
        clients.map(([name, client]) => series(name, mode, back.port, client))));
    }
  } finally {
    await browser.close();
    back.close();
  }
  for (const r of results) {
    process.stdout.write(JSON.stringify({ ...r, medianMs: Number.isFinite(r.medianMs)
      ? r.medianMs : `none within the cap` }) + '\n');
  }
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack) + '\n');
  process.exit(1);
});
