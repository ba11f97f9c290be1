// A bare Engine.IO-over-WebSocket server for tests/test_engineio_client.py, on the `ws`
// package alone (no engine.io): just enough protocol to misbehave on cue, which a real
// engine.io server never does.
//   node eio_raw_server.js PORT
// Each connection picks its behaviour with the query parameter "script":
//   echo            OPEN, then every MESSAGE back as it came (EIO 3 PINGs get a PONG)
//   silent          OPEN (pingInterval 100 ms, pingTimeout 100 ms), then nothing at all
//   no-open         accept the WebSocket, never send OPEN
//   bad-handshake   OPEN whose data is the query parameter "data"
//   second-open     OPEN twice
//   bad-type        OPEN, then the text frame "9garbage" (no such packet type)
//   bad-binary      OPEN, then a binary frame starting with 0xff (no packet type in EIO 3)
//   not-utf8        OPEN, then a text frame that is not UTF-8
//   close-packet    OPEN, then a CLOSE packet
//   early-message   a MESSAGE before OPEN, then OPEN
//   drop-on-message OPEN, then on the first packet from the client drop the TCP connection
//                   without a close frame
// stdout, one JSON line each: {"ev":"listening","port"}, {"ev":"connection","script","query"},
// {"ev":"message","data"}, {"ev":"close","code","reason"}.
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const port = Number(process.argv[2]);
let sessions = 0;

const handshake = (interval, timeout) => '0' + JSON.stringify({
  sid: `raw-${++sessions}`, upgrades: [], pingInterval: interval, pingTimeout: timeout,
  maxPayload: 1000000,
});

const server = http.createServer();
const wss = new WebSocketServer({ server });
wss.on('connection', (ws, req) => {
  const query = Object.fromEntries(new URL(req.url, 'http://x').searchParams);
  const script = query.script || 'echo';
  out({ ev: 'connection', script, query });
  ws.on('close', (code, reason) => out({ ev: 'close', code, reason: reason.toString() }));
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString();
    out({ ev: 'message', data: isBinary ? { $bin: data.toString('base64') } : text });
    if (script === 'drop-on-message') {
      ws.terminate();
    } else if (script === 'echo') {
      if (text === '2') ws.send('3');
      else if (isBinary || text.startsWith('4')) ws.send(data, { binary: isBinary });
    }
  });
  switch (script) {
    case 'silent': ws.send(handshake(100, 100)); break;
    case 'no-open': break;
    case 'bad-handshake': ws.send('0' + (query.data || '')); break;
    case 'second-open': ws.send(handshake(25000, 5000)); ws.send(handshake(25000, 5000)); break;
    case 'bad-type': ws.send(handshake(25000, 5000)); ws.send('9garbage'); break;
    case 'bad-binary':
      ws.send(handshake(25000, 5000));
      ws.send(Buffer.from([0xff, 1, 2]), { binary: true });
      break;
    case 'not-utf8':
      ws.send(handshake(25000, 5000));
      ws.send(Buffer.from([0x34, 0xff, 0xfe]), { binary: false });
      break;
    case 'close-packet': ws.send(handshake(25000, 5000)); ws.send('1'); break;
    case 'early-message': ws.send('4hello'); ws.send(handshake(25000, 5000)); break;
    default: ws.send(handshake(25000, 5000));
  }
});

server.on('error', (err) => {
  process.stderr.write(`listen failed: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => out({ ev: 'listening', port: server.address().port }));
