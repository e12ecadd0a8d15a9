// A healthy Node.js program whose file reads go through libuv's io_uring backend
// (libuv >= 1.45; Node 20 turns it on with UV_USE_IO_URING=1), run by
// uringtrace/tests/real_programs.rs under `uringtrace diagnose`.
//
//   node node-fs.js [--reads N] [--concurrency C] [--idle-ms MS]
//
// 1. Reads N random 4 KiB blocks of a 1 MiB file with fs.read, C at a time
//    (defaults: 4000 reads, 32 at a time).
// 2. Meanwhile: a setTimeout timer, and a TCP server on 127.0.0.1 with one client
//    that sends a request, gets the reply, then holds the keep-alive connection
//    idle for MS ms (default 1500: longer than uringtrace's 1 s stall threshold)
//    before sending a second request and closing.
// 3. Closes everything and lets the event loop end: a clean exit, status 0.
// Prints one JSON line: {"reads":N,"bytes":...,"concurrency":C,"uv":"1.46.0",...}.
'use strict';

const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`${name} needs a count`);
  return v;
}

const READS = arg('--reads', 4000);
const CONCURRENCY = arg('--concurrency', 32);
const IDLE_MS = arg('--idle-ms', 1500);
const BLOCK = 4096;
const FILE_BLOCKS = 256; // 1 MiB

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uringtrace-node-'));
const file = path.join(dir, 'data');
// Synchronous setup: libuv runs sync fs calls directly, not on the ring.
fs.writeFileSync(file, Buffer.alloc(FILE_BLOCKS * BLOCK, 0x5a));

let pending = 3; // reads, timer, keep-alive exchange
const result = { reads: 0, bytes: 0, concurrency: CONCURRENCY, timer_fired: false, exchanges: 0 };
function done() {
  if (--pending > 0) return;
  fs.rmSync(dir, { recursive: true, force: true });
  result.uv = process.versions.uv;
  result.node = process.version;
  console.log(JSON.stringify(result));
}

// 1. Reads: CONCURRENCY workers, each with its own buffer, READS in all.
fs.open(file, 'r', (err, fd) => {
  if (err) throw err;
  let issued = 0;
  let live = 0;
  function next(buf) {
    if (issued === READS) {
      if (--live === 0) fs.close(fd, (e) => { if (e) throw e; done(); });
      return;
    }
    issued++;
    // Deterministic spread over the file: block (i * 97) mod 256.
    const pos = ((issued * 97) % FILE_BLOCKS) * BLOCK;
    fs.read(fd, buf, 0, BLOCK, pos, (e, n) => {
      if (e) throw e;
      if (n !== BLOCK) throw new Error(`short read: ${n}`);
      result.reads++;
      result.bytes += n;
      next(buf);
    });
  }
  const workers = Math.min(CONCURRENCY, READS);
  live = workers;
  for (let w = 0; w < workers; w++) next(Buffer.alloc(BLOCK));
  if (workers === 0) fs.close(fd, (e) => { if (e) throw e; done(); });
});

// 2a. A timer.
setTimeout(() => {
  result.timer_fired = true;
  done();
}, 200);

// 2b. A keep-alive connection that sits idle between two requests.
const server = net.createServer((sock) => {
  sock.on('data', (d) => {
    sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${d.length}\r\nConnection: keep-alive\r\n\r\n`);
    sock.write(d);
  });
  sock.on('end', () => sock.end());
});
server.listen(0, '127.0.0.1', () => {
  const client = net.connect(server.address().port, '127.0.0.1');
  const req = 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n';
  let got = '';
  client.setEncoding('utf8');
  client.on('data', (d) => {
    got += d;
    if (!got.endsWith(req)) return;
    got = '';
    result.exchanges++;
    if (result.exchanges === 1) {
      setTimeout(() => client.write(req), IDLE_MS);
    } else {
      client.end();
    }
  });
  client.on('close', () => server.close(() => done()));
  client.write(req);
});
