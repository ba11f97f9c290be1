// Raw WebSocket peers for tests/test_policy_peers.py: Node's `ws` 8 with whatever Origin and
// Host headers a test chooses (a browser cannot forge them; a page on another site, a
// rebinding page or a local process each send their own), several named sockets in one process.
//   node raw_clients.js
// stdin, one JSON command a line ("id" names the socket):
//   {"op":"ws","id","url","headers":{...}}   open; headers go as they are (Host included)
//   {"op":"send","id","data"}                one text frame
//   {"op":"close","id"}
//   {"op":"exit"}                            (end of input does the same)
// stdout, one JSON line each, all with "id":
//   {"ev":"open"}  {"ev":"message","data"}  {"ev":"close","code"}  {"ev":"error","message"}
//   {"ev":"refused","status","headers","body"}   the handshake got an HTTP answer, not 101
//   {"ev":"fail","message"}                      a command could not run
'use strict';
const readline = require('readline');
const WebSocket = require('ws');

const sockets = new Map();
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

function open(cmd) {
  const id = cmd.id;
  const report = (obj) => out({ id, ...obj });
  // No automatic Origin from ws (it sends none unless told), no compression offer, no
  // redirects: the test sees exactly the server's answer to exactly these headers.
  const ws = new WebSocket(cmd.url, { headers: cmd.headers || {}, perMessageDeflate: false,
    followRedirects: false, handshakeTimeout: 5000 });
  sockets.set(id, ws);
  ws.on('open', () => report({ ev: 'open' }));
  ws.on('message', (data, isBinary) => report({ ev: 'message',
    data: isBinary ? { $bytes: data.toString('base64') } : data.toString('utf8') }));
  ws.on('close', (code) => report({ ev: 'close', code }));
  ws.on('error', (err) => report({ ev: 'error', message: String(err && err.message) }));
  ws.on('unexpected-response', (req, res) => {
    const chunks = [];
    res.on('data', (chunk) => chunks.push(chunk));
    res.on('end', () => {
      report({ ev: 'refused', status: res.statusCode, headers: res.headers,
        body: Buffer.concat(chunks).toString('utf8') });
      req.destroy();
    });
  });
}

function run(cmd) {
  switch (cmd.op) {
    case 'ws':
      open(cmd);
      return;
    case 'send':
      sockets.get(cmd.id).send(cmd.data);
      return;
    case 'close':
      sockets.get(cmd.id).close();
      return;
    case 'exit':
      for (const ws of sockets.values()) ws.terminate();
      process.exit(0);
      return;
    default:
      throw new Error('unknown op ' + cmd.op);
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
    run(cmd);
  } catch (e) {
    out({ id: cmd && cmd.id, ev: 'fail', message: String(e && e.stack) });
  }
});
lines.on('close', () => run({ op: 'exit' }));
