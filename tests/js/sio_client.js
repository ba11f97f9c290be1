// A scripted socket.io client for tests/test_socketio_server.py: socket.io-client 2.5.0 (what
// the Entry workspace uses: Engine.IO 3, Socket.IO revision 4) or 4.x (Engine.IO 4, revision 5),
// several named clients in one process.
//   node sio_client.js
// stdin, one JSON command a line, run in order ("c" names the client, default "a"):
//   {"op":"connect","c","version":"v2"|"v4","url","nsp"?,"opts"?}   opts go to io(): transports,
//       query, auth, reconnection... (forceNew defaults to true: no sharing between clients)
//   {"op":"emit","c","event","args":[...],"ack":"ID"?}   with "ack", the ack is reported as ID
//   {"op":"transport","c"}   reports the engine's current transport
//   {"op":"wait","ms"}       delays the commands after it
//   {"op":"close","c"}       socket.close()
//   {"op":"exit"}
// stdout, one JSON line each, all with "c":
//   {"ev":"connect","id","transport"}  {"ev":"event","name","args","ack":bool}
//   {"ev":"ack","id","args"}  {"ev":"disconnect","reason"}  {"ev":"connect_error","message","data"}
//   {"ev":"error","data"} (revision 4 ERROR packet)  {"ev":"reconnect","attempt"}
//   {"ev":"upgrade","transport"}  {"ev":"transport","name"}  {"ev":"fail","message"}
// Binary (Buffer, ArrayBuffer, typed arrays) is written as {"$bytes": base64}, and
// {"$bytes": base64} in commands becomes a Buffer. An event from the server with an ack callback
// is answered with ("client-ack", ...its arguments).
'use strict';
const readline = require('readline');

const libs = {
  v2: () => require('socket.io-client-v2'),
  v4: () => require('socket.io-client-v4').io,
};
const clients = new Map();

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const toJSON = (v) => {
  if (Buffer.isBuffer(v)) return { $bytes: v.toString('base64') };
  if (v instanceof ArrayBuffer) return { $bytes: Buffer.from(v).toString('base64') };
  if (ArrayBuffer.isView(v)) {
    return { $bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  }
  if (Array.isArray(v)) return v.map(toJSON);
  if (typeof v === 'function') return { $fn: true };
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = toJSON(v[k]);
    return o;
  }
  return v;
};

const fromJSON = (v) => {
  if (Array.isArray(v)) return v.map(fromJSON);
  if (v && typeof v === 'object') {
    if (typeof v.$bytes === 'string' && Object.keys(v).length === 1) {
      return Buffer.from(v.$bytes, 'base64');
    }
    const o = {};
    for (const k of Object.keys(v)) o[k] = fromJSON(v[k]);
    return o;
  }
  return v;
};

// Every event from the server, whatever its name: onAny in v4; v2 has none, so its
// per-socket onevent (which socket.io-client 2 calls for EVENT and BINARY_EVENT) is replaced.
function onEvery(version, socket, fn) {
  if (version === 'v4') {
    socket.onAny(fn);
    return;
  }
  socket.onevent = function (packet) {
    const args = (packet.data || []).slice();
    if (packet.id != null) args.push(this.ack(packet.id));
    fn(...args);
  };
}

function connect(cmd) {
  const c = cmd.c;
  const version = cmd.version;
  const report = (obj) => out({ c, ...obj });
  const opts = { forceNew: true, ...fromJSON(cmd.opts || {}) };
  const socket = libs[version]()(cmd.url + (cmd.nsp || ''), opts);
  const manager = socket.io;
  clients.set(c, { socket, version });

  const transport = () => (manager.engine && manager.engine.transport
    ? manager.engine.transport.name : null);
  const watched = new WeakSet();
  const watchEngine = () => {
    const engine = manager.engine;
    if (engine && !watched.has(engine)) {
      watched.add(engine);
      engine.on('upgrade', (t) => report({ ev: 'upgrade', transport: t.name }));
    }
  };
  watchEngine();
  manager.on('open', watchEngine);

  socket.on('connect', () => report({ ev: 'connect', id: socket.id, transport: transport() }));
  socket.on('disconnect', (reason) => report({ ev: 'disconnect', reason }));
  socket.on('connect_error', (err) => report({
    ev: 'connect_error',
    message: err && err.message !== undefined ? String(err.message) : String(err),
    data: err && err.data !== undefined ? toJSON(err.data) : null,
  }));
  if (version === 'v2') socket.on('error', (data) => report({ ev: 'error', data: toJSON(data) }));
  manager.on('reconnect', (attempt) => report({ ev: 'reconnect', attempt }));
  onEvery(version, socket, (name, ...args) => {
    const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    report({ ev: 'event', name, args: toJSON(args), ack: ack !== null });
    if (ack) ack('client-ack', ...args);
  });
}

function run(cmd) {
  const entry = clients.get(cmd.c);
  switch (cmd.op) {
    case 'connect':
      connect(cmd);
      return;
    case 'emit': {
      const args = fromJSON(cmd.args || []);
      if (cmd.ack !== undefined) {
        args.push((...reply) => out({ c: cmd.c, ev: 'ack', id: cmd.ack, args: toJSON(reply) }));
      }
      entry.socket.emit(cmd.event, ...args);
      return;
    }
    case 'transport': {
      const engine = entry.socket.io.engine;
      out({ c: cmd.c, ev: 'transport', name: engine && engine.transport.name });
      return;
    }
    case 'close':
      entry.socket.close();
      return;
    case 'exit':
      process.exit(0);
      return;
    default:
      throw new Error('unknown op ' + cmd.op);
  }
}

// Commands run one after the other; "wait" holds back the ones after it.
const queue = [];
let waiting = false;
function pump() {
  while (!waiting && queue.length) {
    const cmd = queue.shift();
    if (cmd.op === 'wait') {
      waiting = true;
      setTimeout(() => { waiting = false; pump(); }, cmd.ms);
      return;
    }
    try {
      if (cmd.c === undefined) cmd.c = 'a';
      if (cmd.op !== 'connect' && cmd.op !== 'exit' && !clients.has(cmd.c)) {
        throw new Error('no client ' + cmd.c);
      }
      run(cmd);
    } catch (e) {
      out({ c: cmd.c, ev: 'fail', message: String(e && e.stack) });
    }
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  try {
    queue.push(JSON.parse(line));
  } catch (e) {
    out({ ev: 'fail', message: 'bad command: ' + line });
    return;
  }
  pump();
});
// End of input: exit once the commands before it have run.
lines.on('close', () => {
  queue.push({ op: 'exit' });
  pump();
});
