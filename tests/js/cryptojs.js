// The original server's encrypt/decrypt, for tests/test_secret.py.
//
// stdin: one JSON object {op: "encrypt" | "decrypt", passphrase, items: [...]};
// an encrypt item is {text, salt?} (salt: 16 hex digits, for known answers),
// a decrypt item is a ciphertext string. The passphrase comes on stdin, not
// argv, so it never shows in a process list.
// stdout: a JSON array, one {ok: string} or {error: string} per item.
'use strict';
const CryptoJS = require('crypto-js');

function run(req) {
  return req.items.map((item) => {
    try {
      if (req.op === 'encrypt') {
        const cfg = item.salt ? { salt: CryptoJS.enc.Hex.parse(item.salt) } : {};
        return { ok: CryptoJS.AES.encrypt(item.text, req.passphrase, cfg).toString() };
      }
      if (req.op === 'decrypt') {
        return { ok: CryptoJS.AES.decrypt(item, req.passphrase).toString(CryptoJS.enc.Utf8) };
      }
      return { error: `unknown op ${req.op}` };
    } catch (e) {
      return { error: String(e && e.message) };
    }
  });
}

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  process.stdout.write(JSON.stringify(run(req)));
});
