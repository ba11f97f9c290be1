// The browsers of tests/soak.py: many socket.io-client 2 sockets (what the Entry workspace
// uses) in one process, each emitting Entry-like `message`s at a fixed rate and counting
// the numbered messages its room's parent sends it. Counts only: nothing per message is
// written out, so this process is never the bottleneck.
//   node soak_browsers.js
// stdin, one JSON command a line:
//   {"op":"connect","url","browsers":[{"name","room"}]}   connect them all
//   {"op":"start","hz"}   every browser emits {data, mode, type, b: name, n} hz times a second
//   {"op":"stop"}         stop emitting; answers {"ev":"stopped","sent":{name: count}}
//   {"op":"report"}       answers {"ev":"report","browsers":{name: {...}}}
//   {"op":"exit"}
// stdout, one JSON line each: {"ev":"connected","name"} (first connect of each browser),
//   {"ev":"disconnect","name","reason"}, {"ev":"reconnect","name"}, {"ev":"progress",...}
//   every 10 s, and the answers above.
// A received message is {data: {p, room, n}}: parent p's n-th send to `room`. Each browser
// keeps a bitmap of the n it got, so lost and duplicated messages are counted exactly.
'use strict';
const readline = require('readline');
const io = require('socket.io-client-v2');

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const browsers = new Map();
let timer = null;
let pace = null; // {t0, hz, rounds}: rounds of emits due by now = elapsed * hz

class Seen {
  constructor() { this.bits = Buffer.alloc(4096); this.unique = 0; this.dups = 0; this.max = -1; }
  add(n) {
    if (!Number.isInteger(n) || n < 0) return false;
    while (n >= this.bits.length * 8) {
      const bigger = Buffer.alloc(this.bits.length * 2);
      this.bits.copy(bigger);
      this.bits = bigger;
    }
    const byte = n >> 3;
    const bit = 1 << (n & 7);
    if (this.bits[byte] & bit) { this.dups += 1; return false; }
    this.bits[byte] |= bit;
    this.unique += 1;
    if (n > this.max) this.max = n;
    return true;
  }
}

function connect(url, name, room) {
  const socket = io(url, {
    forceNew: true,
    transports: ['websocket'],
    query: { client: true, roomId: room },
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
  });
  const b = { name, room, socket, sent: 0, got: new Map(), misrouted: 0, bad: 0,
    disconnects: 0, connected: false };
  browsers.set(name, b);
  socket.on('connect', () => {
    if (!b.connected) out({ ev: 'connected', name });
    else out({ ev: 'reconnect', name });
    b.connected = true;
  });
  socket.on('disconnect', (reason) => {
    b.disconnects += 1;
    out({ ev: 'disconnect', name, reason });
  });
  socket.on('message', (msg) => {
    const data = msg && msg.data;
    if (!data || typeof data !== 'object' || typeof data.n !== 'number') { b.bad += 1; return; }
    if (data.room !== room) { b.misrouted += 1; return; }
    let seen = b.got.get(data.p);
    if (!seen) { seen = new Seen(); b.got.set(data.p, seen); }
    seen.add(data.n);
  });
}

// Timers fire late under load; each tick emits every round that is due, so the rate is
// hz on average whatever the timer does.
function tick() {
  const due = Math.floor(((Date.now() - pace.t0) / 1000) * pace.hz) + 1;
  while (pace.rounds < due) {
    pace.rounds += 1;
    emitAll();
  }
}

function emitAll() {
  for (const b of browsers.values()) {
    const n = b.sent;
    b.sent += 1;
    b.socket.emit('message', {
      data: JSON.stringify([{ port: n % 14, value: n & 0xff }]), mode: 0, type: 'utf8',
      b: b.name, n,
    });
  }
}

function totals() {
  let sent = 0; let got = 0;
  for (const b of browsers.values()) {
    sent += b.sent;
    for (const s of b.got.values()) got += s.unique;
  }
  return { sent, got };
}

function report() {
  const result = {};
  for (const b of browsers.values()) {
    const got = {};
    for (const [p, s] of b.got) got[p] = { unique: s.unique, dups: s.dups, max: s.max };
    result[b.name] = { room: b.room, sent: b.sent, got, misrouted: b.misrouted, bad: b.bad,
      disconnects: b.disconnects };
  }
  return result;
}

setInterval(() => out({ ev: 'progress', ...totals() }), 10000).unref();

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { out({ ev: 'fail', message: 'bad command' }); return; }
  switch (cmd.op) {
    case 'connect':
      for (const { name, room } of cmd.browsers) connect(cmd.url, name, room);
      break;
    case 'start':
      if (!timer) {
        pace = { t0: Date.now(), hz: cmd.hz, rounds: 0 };
        timer = setInterval(tick, Math.max(1, Math.floor(500 / cmd.hz)));
      }
      break;
    case 'stop': {
      if (timer) clearInterval(timer);
      timer = null;
      const sent = {};
      for (const b of browsers.values()) sent[b.name] = b.sent;
      out({ ev: 'stopped', sent });
      break;
    }
    case 'report':
      out({ ev: 'report', browsers: report() });
      break;
    case 'exit':
      process.exit(0);
      break;
    default:
      out({ ev: 'fail', message: 'unknown op ' + cmd.op });
  }
}).on('close', () => process.exit(0));
