// parent.js plus a pump: spawns the server exactly as Entry Hardware does and can send it
// numbered `send` messages at a steady rate from Node itself (a Python loop writing to our
// stdin cannot keep 2,000-10,000 messages/s).
//   node pump.js CMD ARGS...
// stdin (JSON lines): everything parent.js takes, plus
//   {"op":"pump","tag","rate","pad"?}  send {key:'send', value:{tag, seq, pad}} `rate` times a
//       second, seq = 0, 1, 2... (pad: that many 'x', to make messages bigger)
//   {"op":"stop","tag"}                stop that pump; reports {"ev":"pumped","tag","sent","ms"}
//   {"op":"count","tag"}               reports {"ev":"count","tag","sent"} and pumps on
// When the server exits, every pump stops and reports "pumped" before "exit".
// stdout (JSON lines): what parent.js reports.
// The pump never runs ahead of the channel: when child.send() says its backlog is full it
// waits for the next tick, so `sent` is what was handed to the channel, not a wish.
'use strict';
const { spawn } = require('child_process');
const readline = require('readline');

const [cmd, ...args] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
const pumps = new Map();
const TICK_MS = 5;

child.on('spawn', () => out({ ev: 'spawned', pid: child.pid }));
child.on('message', (msg) => out({ ev: 'message', msg }));
child.on('disconnect', () => out({ ev: 'disconnect' }));
child.on('error', (err) => out({ ev: 'error', message: String(err && err.message) }));
child.on('exit', (code, signal) => {
  for (const tag of [...pumps.keys()]) stop(tag);
  out({ ev: 'exit', code, signal });
  process.exitCode = 0;
  setTimeout(() => process.exit(0), 50);
});

function start(tag, rate, pad) {
  const p = { sent: 0, t0: Date.now(), pad: 'x'.repeat(pad || 0), timer: null };
  p.timer = setInterval(() => {
    // Catch up with the clock, but never by more than 50 ms worth in one go.
    const due = Math.min(Math.floor(((Date.now() - p.t0) * rate) / 1000) - p.sent,
      Math.ceil(rate / 20));
    for (let i = 0; i < due && child.connected; i++) {
      const value = { tag, seq: p.sent };
      if (p.pad) value.pad = p.pad;
      p.sent += 1;
      if (!child.send({ key: 'send', value })) break;
    }
  }, TICK_MS);
  pumps.set(tag, p);
}

function stop(tag) {
  const p = pumps.get(tag);
  if (!p) return;
  clearInterval(p.timer);
  pumps.delete(tag);
  out({ ev: 'pumped', tag, sent: p.sent, ms: Date.now() - p.t0 });
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let c;
  try { c = JSON.parse(line); } catch (e) { out({ ev: 'error', message: 'bad command' }); return; }
  try {
    if (c.op === 'send') child.send(c.msg);
    else if (c.op === 'disconnect') child.disconnect();
    else if (c.op === 'signal') child.kill(c.name);
    else if (c.op === 'pump') start(c.tag, c.rate, c.pad);
    else if (c.op === 'stop') stop(c.tag);
    else if (c.op === 'count') out({ ev: 'count', tag: c.tag, sent: (pumps.get(c.tag) || {}).sent });
    else out({ ev: 'error', message: 'unknown op ' + c.op });
  } catch (e) {
    out({ ev: 'error', message: String(e && e.message) });
  }
});
