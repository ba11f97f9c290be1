// A stand-in for the Entry Hardware app: spawns the server exactly as it does
// (PROTOCOL.md section 1) and bridges its IPC channel to this process's stdio
// so a Python test can drive it.
//   stdin  (JSON lines): {"op":"send","msg":...} | {"op":"disconnect"} | {"op":"signal","name":"SIGTERM"}
//   stdout (JSON lines): {"ev":"spawned","pid"} {"ev":"message","msg"} {"ev":"disconnect"} {"ev":"exit","code","signal"}
'use strict';
const { spawn } = require('child_process');
const readline = require('readline');

const [cmd, ...args] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });

child.on('spawn', () => out({ ev: 'spawned', pid: child.pid }));
child.on('message', (msg) => out({ ev: 'message', msg }));
child.on('disconnect', () => out({ ev: 'disconnect' }));
child.on('error', (err) => out({ ev: 'error', message: String(err && err.message) }));
child.on('exit', (code, signal) => {
  out({ ev: 'exit', code, signal });
  process.exitCode = 0;
  setTimeout(() => process.exit(0), 50);
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { out({ ev: 'error', message: 'bad command' }); return; }
  try {
    if (cmd.op === 'send') child.send(cmd.msg);
    else if (cmd.op === 'disconnect') child.disconnect();
    else if (cmd.op === 'signal') child.kill(cmd.name);
    else out({ ev: 'error', message: 'unknown op ' + cmd.op });
  } catch (e) {
    out({ ev: 'error', message: String(e && e.message) });
  }
});
