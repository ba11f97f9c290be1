// How the Entry workspace reaches the hardware bridge, reduced to the socket part.
//
// Followed: entrylabs/entryjs, src/class/hw.ts (commit 3a27491078ef39417049b0c55354b71218e4ca47),
// class Hardware: the getters httpsServerAddress / httpsServerAddress2 / httpServerAddress /
// socketConnectOption, _trySocketConnect, _handleSocketConnected, _initSocket and
// _sendSocketMessage; incoming 'message' as src/class/hardware/hardwareSocketMessageHandler.ts
// receives it. What it does, kept here line for line:
//   * addresses, in order: https://hw.playentry.org:23518, https://hardware.playentry.org:23518,
//     then http://127.0.0.1:23518 (on http: and file: pages 127.0.0.1 goes first);
//   * each one: io.connect(url, {transports: ['websocket', 'polling'],
//     query: {client: true, roomId}}), then socket.io.reconnectionAttempts(3),
//     reconnectionDelayMax(1000), timeout(1000);
//   * the next address is tried only when this socket emits 'reconnect_failed' (its first
//     attempt and 3 reconnection attempts all failed), one address after the other (reduce over
//     promises); 'connect' ends the search.
// Why a silent TLS port costs ~26 s per https address: io.connect opens the first attempt at
// once, with the default 20 s timeout (timeout(1000) is set after it, so it only applies to
// the 3 reconnections, each after a 0.5-1 s delay). Left out: the Entry.hwLite status check in
// the reduce (hw_lite.ts is Web Serial, no socket) and the block-menu / hardware-module UI.
// Changed for the tests: the port comes from ?port= (tests never use 23518), the room from
// ?roomId= (else, as entryjs, localStorage 'entryhwRoomId' or a random one); every step is
// reported to the harness through window.entryReport (tests/js/browser.js exposes it), and
// window.entryHw.send(message) is _sendSocketMessage for the harness.
'use strict';

(function () {
  const params = new URLSearchParams(location.search);
  const port = params.get('port') || '23518';
  const started = performance.now();

  function report(ev, fields) {
    const line = Object.assign({ ev, t: Math.round(performance.now()) }, fields || {});
    if (typeof window.entryReport === 'function') {
      window.entryReport(line);
    } else {
      console.log(JSON.stringify(line));
    }
  }

  const transportOf = (socket) => (socket.io.engine && socket.io.engine.transport
    ? socket.io.engine.transport.name : null);
  const describe = (err) => (err && err.message !== undefined ? String(err.message) : String(err));

  // Harness only: what happens to each attempt (socket.io-client 2 forwards these to sockets).
  function observe(socket, url) {
    socket.on('connect_error', (err) => report('connect_error', { url, message: describe(err) }));
    socket.on('connect_timeout', () => report('connect_timeout', { url }));
    socket.on('reconnect_attempt', (n) => report('reconnect_attempt', { url, attempt: n }));
    socket.on('reconnect_failed', () => report('reconnect_failed', { url }));
  }

  class Hardware {
    get httpsServerAddress() {
      return `https://hw.playentry.org:${port}`;
    }

    get httpsServerAddress2() {
      return `https://hardware.playentry.org:${port}`;
    }

    get httpServerAddress() {
      return `http://127.0.0.1:${port}`;
    }

    get cloudRoomIdKey() {
      return 'entryhwRoomId';
    }

    get socketConnectOption() {
      return {
        transports: ['websocket', 'polling'],
        query: {
          client: true,
          roomId: this.sessionRoomId,
        },
      };
    }

    constructor() {
      const prevRoomId = params.get('roomId') || localStorage.getItem(this.cloudRoomIdKey);
      this.sessionRoomId = prevRoomId || this._createRandomRoomId();
      if (!prevRoomId) {
        localStorage.setItem(this.cloudRoomIdKey, this.sessionRoomId);
      }
      this.socketConnectionRetryCount = 3;
      this.programConnected = false;
      this.socket = undefined;
      this.reconnectionTimeout = undefined;
      this.socketMode = undefined;
    }

    _createRandomRoomId() {
      return 'xxxxxxxxyx'.replace(/[xy]/g, (c) => {
        const r = (Math.random() * 16) | 0;
        const v = c === 'x' ? r : (r & 0x3) | 0x8;
        return v.toString(16);
      });
    }

    _trySocketConnect(url) {
      return new Promise((resolve, reject) => {
        report('attempt', { url });
        const socket = io.connect(url, this.socketConnectOption);
        socket.io.reconnectionAttempts(this.socketConnectionRetryCount);
        socket.io.reconnectionDelayMax(1000);
        socket.io.timeout(1000);
        observe(socket, url);
        socket.on('connect', () => {
          this._handleSocketConnected(socket, url);
          resolve();
        });
        socket.on('reconnect_failed', () => {
          reject();
        });
      });
    }

    _handleSocketConnected(socket, url) {
      socket.removeEventListener('reconnect_failed');
      socket.removeEventListener('connect');
      this.socket = socket;
      this._setSocketConnected();
      report('connect', {
        url,
        transport: transportOf(socket),
        sinceStartMs: Math.round(performance.now() - started),
      });

      socket.on('connect', () => {
        this._setSocketConnected();
        report('reconnect', { url, transport: transportOf(socket) });
      });

      socket.on('mode', (mode) => {
        this.socketMode = mode;
        report('mode', { mode });
      });

      // hardwareSocketMessageHandler.ts: socket.on('message', ...) with {action, data}.
      socket.on('message', (message) => report('message', { message }));

      socket.on('disconnect', (reason) => {
        // entryjs: "on a cloud PC the connection drops for a moment; reconnect".
        this._setSocketClosed();
        report('disconnect', { reason });
        this.reconnectionTimeout = setTimeout(() => {
          this._initSocket();
        }, 1500);
      });

      socket.on('reconnect_failed', () => {
        this._setSocketClosed();
      });
    }

    _setSocketConnected() {
      this.programConnected = true;
      document.getElementById('status').textContent = 'connected';
    }

    _setSocketClosed() {
      this.programConnected = false;
      document.getElementById('status').textContent = 'disconnected';
    }

    _initSocket() {
      if (this.socket) {
        if (this.reconnectionTimeout) {
          clearTimeout(this.reconnectionTimeout);
          this.reconnectionTimeout = undefined;
        }
        this.socket.io.reconnection(true);
        this.socket.connect();
        return;
      }
      const connectionTries = [this.httpsServerAddress, this.httpsServerAddress2];

      // entryjs: on http: or file: pages, try the local address first.
      if (['http:', 'file:'].indexOf(location.protocol) > -1) {
        connectionTries.unshift(this.httpServerAddress);
      } else {
        connectionTries.push(this.httpServerAddress);
      }
      report('start', { tries: connectionTries, roomId: this.sessionRoomId });

      connectionTries
        .reduce(async (prevPromise, address) => {
          const prevResult = await prevPromise;
          if (prevResult) {
            return true;
          }
          try {
            await this._trySocketConnect(address);
            return true;
          } catch (e) {
            return !!(this.programConnected || this.socket);
          }
        }, undefined)
        .then((result) => {
          if (!result) {
            this._setSocketClosed();
            report('all_failed', { sinceStartMs: Math.round(performance.now() - started) });
          }
        })
        .catch((e) => report('page_error', { message: describe(e) }));
    }

    _sendSocketMessage(message) {
      if (this.programConnected && this.socket && !this.socket.disconnected) {
        this.socket.emit('message', message);
        return true;
      }
      return false;
    }
  }

  const hw = new Hardware();
  window.entryHw = {
    send(message) {
      const sent = hw._sendSocketMessage(message);
      report(sent ? 'sent' : 'not_sent', { message });
      return sent;
    },
  };
  hw._initSocket();
})();
