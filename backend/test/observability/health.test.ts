// The admin HTTP endpoint over real sockets: status codes, readiness flips, metrics text, limits, shutdown; and
// one real broker process started with --admin-port to check main.ts wires it.
import test from 'ava';
import http from 'node:http';
import net from 'node:net';
import { AdminServer, renderMetrics, type Metric } from '../../src/observability/health.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { freePort, startBroker } from '../../../integration/helpers/broker.ts';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function started(deps: Partial<ConstructorParameters<typeof AdminServer>[1]> = {},
  options: Partial<ConstructorParameters<typeof AdminServer>[0]> = {}): Promise<AdminServer> {
  const admin = new AdminServer({ host: '127.0.0.1', port: 0, ...options },
    { ready: () => true, logger: silentLogger(), ...deps });
  await admin.listen();
  return admin;
}

test('healthz answers 200 while readyz follows the ready callback', async (t) => {
  let ready = false;
  const admin = await started({ ready: () => ready });
  t.teardown(() => admin.stop());
  t.is((await request(admin.port, '/healthz')).status, 200);
  const notReady = await request(admin.port, '/readyz');
  t.is(notReady.status, 503);
  t.is(notReady.body, 'not ready\n');
  t.is(notReady.headers['cache-control'], 'no-store');
  ready = true;
  t.is((await request(admin.port, '/readyz')).status, 200);
  t.is((await request(admin.port, '/readyz?verbose=1')).status, 200, 'a query string does not change the path');
  ready = false;
  t.is((await request(admin.port, '/readyz')).status, 503);
  t.is((await request(admin.port, '/healthz')).status, 200);
});

test('a throwing ready callback reads as not ready and the server keeps answering', async (t) => {
  const admin = await started({ ready: () => { throw new Error('probe bug'); } });
  t.teardown(() => admin.stop());
  t.is((await request(admin.port, '/readyz')).status, 503);
  t.is((await request(admin.port, '/healthz')).status, 200);
});

test('unknown paths are 404, other methods 405, HEAD has headers and no body', async (t) => {
  const admin = await started();
  t.teardown(() => admin.stop());
  t.is((await request(admin.port, '/nope')).status, 404);
  const post = await request(admin.port, '/readyz', 'POST');
  t.is(post.status, 405);
  t.is(post.headers.allow, 'GET, HEAD');
  const head = await request(admin.port, '/healthz', 'HEAD');
  t.is(head.status, 200);
  t.is(head.body, '');
  t.is(head.headers['content-length'], '3');
});

test('metrics are served in Prometheus text format from a fresh snapshot each time', async (t) => {
  let served = 0;
  const metrics = (): Metric[] => [
    { name: 'takhin_requests_total', help: 'Requests.', type: 'counter', value: ++served },
    { name: 'takhin_lag', help: 'Lag\nwith a newline', type: 'gauge', value: Infinity },
  ];
  const admin = await started({ metrics });
  t.teardown(() => admin.stop());
  const first = await request(admin.port, '/metrics');
  t.is(first.status, 200);
  t.is(first.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  t.is(first.body, '# HELP takhin_requests_total Requests.\n# TYPE takhin_requests_total counter\ntakhin_requests_total 1\n' +
    '# HELP takhin_lag Lag\\nwith a newline\n# TYPE takhin_lag gauge\ntakhin_lag +Inf\n');
  t.regex((await request(admin.port, '/metrics')).body, /^takhin_requests_total 2$/m);
});

test('metrics are 404 without a source and 500 when the snapshot is malformed', async (t) => {
  const none = await started();
  t.teardown(() => none.stop());
  t.is((await request(none.port, '/metrics')).status, 404);
  const bad = await started({ metrics: () => [{ name: 'bad name', help: '', type: 'gauge', value: 1 }] });
  t.teardown(() => bad.stop());
  t.is((await request(bad.port, '/metrics')).status, 500);
  t.throws(() => renderMetrics([{ name: '9x', help: '', type: 'gauge', value: 1 }]), { message: /invalid metric name/ });
});

test('connections beyond connectionsMax are closed at once', async (t) => {
  const admin = await started({}, { connectionsMax: 2 });
  t.teardown(() => admin.stop());
  const held: net.Socket[] = [];
  t.teardown(() => held.forEach((s) => s.destroy()));
  for (let i = 0; i < 2; i++) {
    const s = net.connect(admin.port, '127.0.0.1');
    await new Promise((ok) => s.once('connect', ok));
    held.push(s);
  }
  // Give the server time to accept the two before the third arrives.
  await new Promise((ok) => setTimeout(ok, 100));
  const extra = net.connect(admin.port, '127.0.0.1');
  const closed = await new Promise<boolean>((ok) => {
    extra.once('close', () => ok(true));
    setTimeout(() => ok(false), 3_000);
  });
  t.true(closed, 'the third connection is closed by the server');
  held[0]!.destroy();
  await new Promise((ok) => setTimeout(ok, 100));
  t.is((await request(admin.port, '/healthz')).status, 200, 'a slot freed up is usable again');
});

test('stop closes kept-alive connections and frees the port', async (t) => {
  const admin = await started();
  const port = admin.port;
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  await new Promise<void>((ok, fail) => {
    http.get({ host: '127.0.0.1', port, path: '/healthz', agent }, (res) => {
      res.resume();
      res.on('end', ok);
    }).on('error', fail);
  });
  await admin.stop();
  await admin.stop();
  const err = await t.throwsAsync(request(port, '/healthz'));
  t.is((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
  t.throws(() => admin.port, { message: /not listening/ });
});

test('listen rejects when the port is taken', async (t) => {
  const first = await started();
  t.teardown(() => first.stop());
  const second = new AdminServer({ host: '127.0.0.1', port: first.port }, { ready: () => true, logger: silentLogger() });
  const err = await t.throwsAsync(second.listen());
  t.is((err as NodeJS.ErrnoException).code, 'EADDRINUSE');
});

test('a broker started with --admin-port is ready once serving and closes the endpoint on SIGTERM', async (t) => {
  const adminPort = await freePort();
  const broker = await startBroker({ args: ['--admin-port', String(adminPort)] });
  t.teardown(async () => {
    await broker.kill();
    broker.cleanup();
  });
  // The Kafka port accepts before the storage is open: readiness may lag it a little.
  const deadline = Date.now() + 10_000;
  let ready = await request(adminPort, '/readyz');
  while (ready.status !== 200 && Date.now() < deadline) {
    await new Promise((ok) => setTimeout(ok, 50));
    ready = await request(adminPort, '/readyz');
  }
  t.is(ready.status, 200, broker.output());
  t.is((await request(adminPort, '/healthz')).status, 200);
  const metrics = await request(adminPort, '/metrics');
  t.regex(metrics.body, /^takhin_connections_accepted_total \d+$/m);
  t.regex(metrics.body, /^takhin_process_resident_memory_bytes \d+$/m);
  t.is(await broker.stop(), 0);
  const err = await t.throwsAsync(request(adminPort, '/healthz'));
  t.is((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
});

test('a cluster node is not ready until a Raft leader is known', async (t) => {
  const [k1, k2, k3, r1, r2, r3, a1, a2] = await Promise.all(Array.from({ length: 8 }, () => freePort()));
  const members = [`1@127.0.0.1:${r1}@127.0.0.1:${k1}`, `2@127.0.0.1:${r2}@127.0.0.1:${k2}`, `3@127.0.0.1:${r3}@127.0.0.1:${k3}`].join(',');
  const node = (id: number, port: number, admin: number) =>
    startBroker({ port, args: ['--mode', 'raft', '--node-id', String(id), '--initial-members', members, '--admin-port', String(admin)] });
  const first = await node(1, k1!, a1!);
  t.teardown(async () => {
    await first.kill();
    first.cleanup();
  });
  // Alone, node 1 has no quorum: it serves /healthz but no leader can be elected (election timeout ~1-2 s).
  await new Promise((ok) => setTimeout(ok, 2_500));
  t.is((await request(a1!, '/healthz')).status, 200);
  t.is((await request(a1!, '/readyz')).status, 503, first.output());

  const second = await node(2, k2!, a2!);
  t.teardown(async () => {
    await second.kill();
    second.cleanup();
  });
  const deadline = Date.now() + 20_000;
  let ready = [0, 0];
  while (Date.now() < deadline) {
    ready = [(await request(a1!, '/readyz')).status, (await request(a2!, '/readyz')).status];
    if (ready[0] === 200 && ready[1] === 200) break;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  t.deepEqual(ready, [200, 200], `${first.output()}\n${second.output()}`);
});
