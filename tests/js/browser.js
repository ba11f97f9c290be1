// Debian's Chromium, headless, on the Entry page (tests/js/entry_page/) served as
// https://playentry.org, driven with playwright-core. Never downloads a browser: it runs
// /usr/bin/chromium (or $CHROMIUM) and fails if that is missing.
//   node browser.js '{"port": N, "roomId": "r", "deadlineMs": 60000}'
// Every Entry name (playentry.org, hw.playentry.org, hardware.playentry.org) resolves to
// 127.0.0.1, any other name to nothing; the page itself comes from page.route, so nothing
// leaves the machine.
// Optional config keys (tests/test_policy_peers.py), for a page that is not Entry's:
//   "origin": "https://evil.example"   serve the same page from this origin instead
//   "rebind": true                     the origin's host name resolves to 127.0.0.1 too (DNS
//                                      rebinding) and only the page's own files come from
//                                      page.route: every other request of the origin goes
//                                      to the network, i.e. to whatever listens there
//   "spki": "BASE64"                   trust the server certificate with this SPKI pin (a
//                                      test CA's leaf), so https://hw.playentry.org works
//   "lnaChecks": false                 without Chromium's Local Network Access checks (which
//                                      stop a non-secure public page reaching 127.0.0.1 at
//                                      all), as in browsers that have none
// stdin, one JSON command a line:
//   {"op":"send","message":{...}}  the page's _sendSocketMessage(message): emit 'message'
//   {"op":"eval","id","js"}        evaluate the expression js in the page (a promise is
//                                  awaited); reports {"ev":"eval","id","value"} or
//                                  {"ev":"eval","id","error"}
//   {"op":"exit"}                  (end of input does the same)
// stdout, one JSON line each:
//   {"ev":"launched","version"}  {"ev":"loaded","ms"}  then the page's own reports, with
//   "t" (ms since navigation): start, attempt, connect_error, connect_timeout, reconnect_attempt,
//   reconnect_failed, connect {url, transport, sinceStartMs}, message {message}, sent, not_sent,
//   disconnect, all_failed; {"ev":"console","type","text"} {"ev":"error","message"}
//   {"ev":"deadline"} {"ev":"closed"}
// The browser is closed on exit, end of input, SIGTERM/SIGINT and at the deadline.
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PAGE_DIR = path.join(__dirname, 'entry_page');
const SIO_BUNDLE = path.join(__dirname, 'node_modules', 'socket.io-client-v2', 'dist',
  'socket.io.js');
const ORIGIN = 'https://playentry.org';
const ENTRY_NAMES = ['hw.playentry.org', 'hardware.playentry.org', 'playentry.org'];

// Entry's names (and extraNames) resolve to 127.0.0.1, every other name to nothing.
function resolverRules(extraNames = []) {
  return '--host-resolver-rules=' + [
    ...[...ENTRY_NAMES, ...extraNames].map((name) => `MAP ${name} 127.0.0.1`),
    'MAP * ~NOTFOUND',
    'EXCLUDE 127.0.0.1',
  ].join(', ');
}

// The flags of the machine notes (playwright adds --headless, --no-sandbox and a fresh
// temporary --user-data-dir of its own; it refuses one in args).
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  resolverRules(),
];

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// extraNames: more host names that resolve to 127.0.0.1 (for a rebinding page).
async function launchChromium(extraArgs = [], extraNames = []) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  }
  const { chromium } = require('playwright-core');
  const flags = extraNames.length
    ? FLAGS.map((flag) => (flag.startsWith('--host-resolver-rules=') ? resolverRules(extraNames)
      : flag))
    : FLAGS;
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...flags, ...extraArgs],
    timeout: 30000,
    handleSIGINT: false,
    handleSIGTERM: false,
  });
}

// A new context whose https://playentry.org/* (or origin/*) is answered from
// tests/js/entry_page/; with rebind, only the page's own files are, the rest goes out.
async function entryContext(browser, origin = ORIGIN, rebind = false) {
  // A real user allows the loopback connection when Chromium asks; headless has nobody to ask.
  const context = await browser.newContext({ permissions: ['local-network-access'] });
  await context.route(`${origin}/**`, (route) => {
    const url = new URL(route.request().url());
    if (rebind && !['/', '/index.html', '/hw.js', '/lib/socket.io.js'].includes(url.pathname)) {
      return route.continue();
    }
    const file = url.pathname === '/lib/socket.io.js' ? SIO_BUNDLE
      : path.join(PAGE_DIR, url.pathname === '/' ? 'index.html' : path.normalize(url.pathname));
    if (!file.startsWith(PAGE_DIR + path.sep) && file !== SIO_BUNDLE) {
      return route.fulfill({ status: 404, body: 'not here' });
    }
    if (!fs.existsSync(file)) return route.fulfill({ status: 404, body: 'not found' });
    const type = file.endsWith('.html') ? 'text/html; charset=utf-8'
      : 'application/javascript; charset=utf-8';
    return route.fulfill({ status: 200, contentType: type, body: fs.readFileSync(file) });
  });
  return context;
}

async function main() {
  const config = JSON.parse(process.argv[2] || '{}');
  if (!Number.isInteger(config.port)) throw new Error('config needs an integer "port"');
  const origin = config.origin || ORIGIN;
  const rebind = Boolean(config.rebind);
  const extraArgs = config.lnaChecks === false
    ? ['--disable-features=LocalNetworkAccessChecks'] : [];
  if (config.spki) {
    // Trust the test's own leaf (by its public key pin, as entryhw-certs prints it):
    // the page then reaches wss://hw.playentry.org as with the real certificate.
    extraArgs.push(`--ignore-certificate-errors-spki-list=${config.spki}`);
  }
  const deadlineMs = config.deadlineMs || 60000;
  let browser = null;
  let closing = null;

  const shutdown = (code) => {
    if (!closing) {
      closing = (async () => {
        const hard = setTimeout(() => process.exit(code || 1), 10000);
        try {
          if (browser) await browser.close();
        } catch (e) {
          out({ ev: 'error', message: 'close: ' + String(e && e.message) });
        }
        clearTimeout(hard);
        out({ ev: 'closed' });
        process.exit(code);
      })();
    }
    return closing;
  };
  const deadline = setTimeout(() => { out({ ev: 'deadline' }); shutdown(2); }, deadlineMs);
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));

  // Commands may come before the page is ready: they wait for it.
  let ready;
  const pageReady = new Promise((resolve) => { ready = resolve; });
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', async (line) => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      out({ ev: 'error', message: 'bad command: ' + line });
      return;
    }
    if (cmd.op === 'exit') {
      shutdown(0);
      return;
    }
    const page = await pageReady;
    try {
      if (cmd.op === 'send') {
        await page.evaluate((message) => window.entryHw.send(message), cmd.message);
      } else if (cmd.op === 'eval') {
        try {
          out({ ev: 'eval', id: cmd.id, value: await page.evaluate(cmd.js) });
        } catch (e) {
          out({ ev: 'eval', id: cmd.id, error: String(e && e.message) });
        }
      } else {
        out({ ev: 'error', message: 'unknown op ' + cmd.op });
      }
    } catch (e) {
      if (!closing) out({ ev: 'error', message: String(e && e.message) });
    }
  });
  lines.on('close', () => shutdown(0));

  try {
    browser = await launchChromium(extraArgs, rebind ? [new URL(origin).hostname] : []);
    out({ ev: 'launched', version: browser.version() });
    if (closing) return;
    const context = await entryContext(browser, origin, rebind);
    const page = await context.newPage();
    await page.exposeFunction('entryReport', (line) => out(line));
    page.on('console', (msg) => out({ ev: 'console', type: msg.type(), text: msg.text() }));
    page.on('pageerror', (err) => out({ ev: 'error', message: 'page: ' + String(err) }));
    const query = new URLSearchParams({ port: String(config.port) });
    if (config.roomId) query.set('roomId', config.roomId);
    const t0 = Date.now();
    await page.goto(`${origin}/?${query}`, { waitUntil: 'load', timeout: 30000 });
    out({ ev: 'loaded', ms: Date.now() - t0 });
    ready(page);
  } catch (e) {
    if (!closing) {
      out({ ev: 'error', message: String(e && e.message) });
      shutdown(1);
    }
  }
}

module.exports = { launchChromium, entryContext, FLAGS, CHROMIUM };

if (require.main === module) {
  main().catch((e) => {
    out({ ev: 'error', message: String(e && e.stack) });
    process.exit(1);
  });
}
