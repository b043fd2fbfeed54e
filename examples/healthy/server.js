// A Node.js HTTP server: the main thread runs libuv's event loop and each
// request reads a file with fs.promises.readFile, which runs on libuv's
// thread pool.
//
//   node server.js PORT FILE
'use strict';
const http = require('http');
const fs = require('fs');

const [port, file] = process.argv.slice(2);
http.createServer(async (req, res) => {
  try {
    const data = await fs.promises.readFile(file);
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`${data.length}\n`);
  } catch (err) {
    res.writeHead(500);
    res.end(`${err.message}\n`);
  }
}).listen(Number(port), '127.0.0.1');
