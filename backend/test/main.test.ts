// The entry point as a real process: config errors, start, serve, SIGTERM.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { decodeResponseFrame } from '../src/protocol/frame.ts';
import { ApiKey } from '../src/protocol/generated/index.ts';
import type { ApiVersionsResponse } from '../src/protocol/generated/index.ts';
import { TestClient } from './server/harness.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = path.join(ROOT, 'backend/src/main.ts');

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function run(args: string[], env: Record<string, string> = {}): Run {
  // Only the variables a broker needs: a stray TAKHIN_* from the outer environment must not leak in.
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function waitForLine(r: Run, msg: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const line of r.stdout().split('\n')) {
      if (!line.startsWith('{')) continue;
      const parsed = JSON.parse(line) as Record<string, unknown>;
      if (parsed.msg === msg) return parsed;
    }
    if (r.child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no "${msg}" line; stdout: ${r.stdout()} stderr: ${r.stderr()}`);
}

test('a bad setting exits 1 with one line naming it and no stack trace', async (t) => {
  const r = run(['--port', 'nine']);
  t.is(await r.exit, 1);
  t.regex(r.stderr(), /^takhin: invalid configuration:\n {2}port: must be an integer.*TAKHIN_PORT.*--port/);
  t.notRegex(r.stderr(), /\n\s+at /);
  t.is(r.stdout(), '');
});

test('--help lists the settings and exits 0', async (t) => {
  const r = run(['--help']);
  t.is(await r.exit, 0);
  t.regex(r.stdout(), /--data-dir {2}\(TAKHIN_DATA_DIR/);
});

test('starts, serves ApiVersions, and exits 0 on SIGTERM after a clean shutdown', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'takhin-main-'));
  t.teardown(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const r = run(['--port', '0', '--hosts', '127.0.0.1'], { TAKHIN_DATA_DIR: dataDir, TAKHIN_LOG_FORMAT: 'json' });
  t.teardown(() => {
    if (r.child.exitCode === null) r.child.kill('SIGKILL');
  });
  const listening = await waitForLine(r, 'listening');
  t.is(listening.dataDir, dataDir);
  const [address] = listening.addresses as string[];
  const port = Number(address!.split(':').pop());
  t.true(port > 0);
  t.is(listening.advertised, `127.0.0.1:${port}`);

  const client = await TestClient.connect(port);
  client.request(ApiKey.ApiVersions, 3, 1, { clientSoftwareName: 'main-test', clientSoftwareVersion: '1' });
  const { body } = decodeResponseFrame<ApiVersionsResponse>(await client.frame(), ApiKey.ApiVersions, 3);
  t.is(body.errorCode, 0);
  t.true(body.apiKeys.some((k) => k.apiKey === ApiKey.ApiVersions));

  r.child.kill('SIGTERM');
  t.is(await r.exit, 0);
  await waitForLine(r, 'stopped');
  t.true(await client.closesWithin(1000));
});
