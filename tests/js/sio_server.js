// A socket.io server for tests/test_socketio_client.py, either major the client must reach:
// v2 = socket.io 2.x (Engine.IO 3, revision 4, what the original Entry server runs),
// v4 = socket.io 4.x (Engine.IO 4, revision 5).
//   node sio_server.js v2|v4 PORT [--ping-interval MS] [--ping-timeout MS] [--tls CERT KEY]
// stdout, one JSON line each: {"ev":"listening","port"}, {"ev":"connection","nsp","id","query"
// (,"auth" in v4)}, {"ev":"event","nsp","id","name","args","ack"}, {"ev":"answer","nsp","args"},
// {"ev":"disconnect","nsp","id","reason"}.  Binary is written as {"$bin": base64}.
// Namespaces "/" and "/custom" behave alike:
//   any event with an ack callback is acked with its own arguments;
//   "echo"   -> emits "echo" back with the same arguments;
//   "ask"    -> emits "question" with the arguments and an ack; the answer is printed;
//   "binary" -> emits "binary" with Buffers (top level and nested);
//   "kick"   -> socket.disconnect(args[0] === true) (server-side disconnect).
// A connection with token "refuse" (v2: in the query, v4: in auth) is refused by middleware
// (an ERROR / CONNECT_ERROR packet).
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');

const V2 = process.argv[2] === 'v2';
if (!V2 && process.argv[2] !== 'v4') {
  process.stderr.write('usage: node sio_server.js v2|v4 PORT [options]\n');
  process.exit(2);
}
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const port = Number(process.argv[3]);
const opt = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};

const toJSON = (v) => {
  if (Buffer.isBuffer(v)) return { $bin: v.toString('base64') };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return v.map(toJSON);
  if (typeof v === 'function') return { $fn: true };
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = toJSON(v[k]);
    return o;
  }
  return v;
};

const tlsAt = process.argv.indexOf('--tls');
const server = tlsAt > 0
  ? https.createServer({
    cert: fs.readFileSync(process.argv[tlsAt + 1]),
    key: fs.readFileSync(process.argv[tlsAt + 2]),
  })
  : http.createServer();
const options = {
  pingInterval: opt('--ping-interval', 25000),
  pingTimeout: opt('--ping-timeout', 5000),
  transports: ['websocket', 'polling'],
};
const io = V2 ? require('socket.io-v2')(server, options)
  : new (require('socket.io-v4').Server)(server, options);

function wire(nsp) {
  nsp.use((socket, next) => {
    // revision 4 has no auth payload: the query carries the token there
    if ((V2 ? socket.handshake.query : socket.handshake.auth).token === 'refuse') {
      const err = new Error('not authorized');
      err.data = { reason: 'refused by the test server' };
      next(err);
    } else {
      next();
    }
  });
  nsp.on('connection', (socket) => {
    out({
      ev: 'connection', nsp: nsp.name, id: socket.id,
      query: socket.handshake.query, ...(V2 ? {} : { auth: socket.handshake.auth }),
    });
    socket.use((packet, next) => {
      const args = packet.slice(1);
      const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      out({ ev: 'event', nsp: nsp.name, id: socket.id, name: packet[0], args: toJSON(args), ack: !!ack });
      if (ack) ack(...args);
      next();
    });
    socket.on('echo', (...args) => {
      if (typeof args[args.length - 1] === 'function') args.pop();
      socket.emit('echo', ...args);
    });
    socket.on('ask', (...args) => {
      if (typeof args[args.length - 1] === 'function') args.pop();
      socket.emit('question', ...args, (...answer) => {
        out({ ev: 'answer', nsp: nsp.name, args: toJSON(answer) });
      });
    });
    socket.on('binary', () => {
      socket.emit('binary', Buffer.from([0, 1, 2, 255]),
        { nested: [Buffer.from('h\u00e9llo', 'utf8')], text: 'caf\u00e9' });
    });
    socket.on('kick', (close) => socket.disconnect(close === true));
    socket.on('disconnect', (reason) => {
      out({ ev: 'disconnect', nsp: nsp.name, id: socket.id, reason });
    });
  });
}

wire(io.of('/'));
wire(io.of('/custom'));

server.on('error', (err) => {
  process.stderr.write(`listen failed: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => out({ ev: 'listening', port: server.address().port }));
