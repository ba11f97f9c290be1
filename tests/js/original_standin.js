// A stand-in for the original Node.js Entry HW server, written from PROTOCOL.md
// sections 1 and 3-5 with the same libraries it uses (socket.io 2 as host,
// socket.io-client 2 as child). Spawned by parent.js exactly like entryhw, it
// lets tests check that entryhw interoperates with the original in both roles.
// Plain HTTP only; the port comes from ENTRY_PORT (default 23518).
'use strict';
const http = require('http');

const port = Number(process.env.ENTRY_PORT || 23518);
let mode = null; // 2 host, 3 client
let ownRoom = null;
let io = null;
let client = null;
const childServers = new Map(); // socket -> roomId (null until matchTarget)
const roomToChild = new Map();

const toParent = (key, value) => {
  if (process.connected) process.send(value === undefined ? { key } : { key, value });
};
const cloudMode = () => (childServers.size ? 1 : 0);

process.on('message', (msg) => {
  if (!msg || typeof msg !== 'object') return;
  const { key, value } = msg;
  if (key === 'open') open();
  else if (key === 'addRoomId') addRoomId(value);
  else if (key === 'send') sendToBrowser(value);
  else if (key === 'disconnectHardware') sendToBrowser('disconnectHardware');
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

function open() {
  if (mode !== null) return;
  const server = http.createServer((req, res) => res.end('hello entry'));
  server.once('error', () => becomeClient());
  server.listen(port, '127.0.0.1', () => becomeHost(server));
}

function becomeHost(server) {
  mode = 2;
  io = require('socket.io-v2')(server, { pingInterval: 1000, transports: ['websocket', 'polling'] });
  toParent('runningModeChanged', 2);
  toParent('cloudModeChanged', 0);
  io.on('connection', (socket) => {
    const query = socket.handshake.query;
    if (query.childServer === 'true') {
      childServers.set(socket, null);
    } else {
      socket.isBrowser = true;
      socket.roomId = query.roomId;
      if (query.roomId) socket.join(query.roomId);
    }
    toParent('connection');
    toParent('cloudModeChanged', cloudMode());
    socket.on('matchTarget', (data) => {
      const roomId = typeof data === 'string' ? data : data && data.roomId;
      if (!childServers.has(socket) || !roomId) return;
      socket.roomId = roomId;
      childServers.set(socket, roomId);
      roomToChild.set(roomId, socket);
    });
    socket.on('message', (payload, ack) => {
      if (cloudMode() === 0) {
        toParent('data', payload);
      } else if (childServers.has(socket)) {
        if (socket.roomId) io.to(socket.roomId).emit('message', payload);
      } else {
        const child = roomToChild.get(socket.roomId);
        if (child) child.emit('message', payload);
        else if (socket.roomId && socket.roomId === ownRoom) toParent('data', payload);
      }
      if (typeof ack === 'function') ack(payload && payload.key !== undefined ? payload.key : true);
    });
    socket.on('disconnect', () => {
      toParent('close', socket.roomId);
      if (childServers.has(socket)) {
        childServers.delete(socket);
        if (socket.roomId && roomToChild.get(socket.roomId) === socket) roomToChild.delete(socket.roomId);
      }
      if (!childServers.size) toParent('cloudModeChanged', 0);
    });
  });
}

function sendToBrowser(value) {
  const payload = { data: value };
  if (mode === 3) {
    if (client && client.connected) client.emit('message', payload);
  } else if (io) {
    if (cloudMode() === 1 && ownRoom) {
      io.to(ownRoom).emit('message', payload);
    } else {
      for (const socket of Object.values(io.sockets.sockets)) {
        if (socket.isBrowser) socket.emit('message', payload);
      }
    }
  }
}

function becomeClient() {
  mode = 3;
  toParent('runningModeChanged', 3);
  toParent('cloudModeChanged', 1);
  client = require('socket.io-client-v2')(`http://127.0.0.1:${port}`, {
    query: { childServer: true },
    reconnectionAttempts: 3,
    transports: ['websocket'],
  });
  client.on('connect', () => {
    if (ownRoom) client.emit('matchTarget', ownRoom);
  });
  client.on('message', (payload) => toParent('data', payload));
  const reelect = () => {
    if (!client) return;
    client.close();
    client = null;
    mode = null;
    setTimeout(open, 50 + Math.random() * 450);
  };
  client.on('disconnect', reelect);
  client.on('reconnect_failed', reelect);
}

function addRoomId(value) {
  ownRoom = value;
  if (mode === 3 && client && client.connected) client.emit('matchTarget', ownRoom);
}
