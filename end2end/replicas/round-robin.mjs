// A small round-robin load balancer for the replica browser tests: every request, and every
// WebSocket, goes to the next replica in turn, so a page load, its server-function calls and
// its event stream land on different replicas. Usage: node round-robin.mjs LISTEN_PORT UPSTREAM_PORT...
// The client's X-Forwarded-For passes through unchanged (the replicas trust this proxy, as the
// single server of the main suite trusts the browser's loopback address).
import http from 'node:http';
import net from 'node:net';

const [listen, ...upstreams] = process.argv.slice(2).map(Number);
if (!listen || upstreams.length === 0) {
  console.error('usage: node round-robin.mjs LISTEN_PORT UPSTREAM_PORT...');
  process.exit(2);
}
let turn = 0;
const next = () => upstreams[turn++ % upstreams.length];

const server = http.createServer((req, res) => {
  const port = next();
  const upstream = http.request(
    { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
      answer.pipe(res);
    },
  );
  upstream.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`replica on ${port}: ${e.message}\n`);
  });
  req.pipe(upstream);
  // A closed tab ends its stream on the replica too.
  res.on('close', () => upstream.destroy());
});

server.on('upgrade', (req, socket, head) => {
  const port = next();
  const upstream = net.connect(port, '127.0.0.1', () => {
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    upstream.write(lines.join('\r\n') + '\r\n\r\n');
    if (head.length) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  const close = () => {
    upstream.destroy();
    socket.destroy();
  };
  upstream.on('error', close);
  socket.on('error', close);
});

server.listen(listen, '127.0.0.1', () => console.log(`round robin on ${listen} over ${upstreams.join(', ')}`));
