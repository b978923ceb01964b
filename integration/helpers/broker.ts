// Starts a real takhin-ts broker process (the same entry point as `npm start`) for integration tests, on a
// free loopback port with its own data directory, and stops it gracefully or with SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** How long a broker may take to accept connections after spawn (ms): tsx compiles on first start. */
const BROKER_START_TIMEOUT_MS = 60_000;
/** How long a graceful stop may take before the test kills the process (ms). */
const BROKER_STOP_TIMEOUT_MS = 20_000;

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => ok(port));
    });
  });
}

export interface BrokerProcess {
  port: number;
  dataDir: string;
  bootstrap: string;
  child: ChildProcess;
  /** Everything the broker printed (stdout + stderr), for failure messages. */
  output(): string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Remove the data directory (after stop/kill). */
  cleanup(): void;
}

export interface StartOptions {
  port?: number;
  dataDir?: string;
  /** Extra CLI flags for main.ts. */
  args?: string[];
  env?: Record<string, string>;
}

export async function startBroker(options: StartOptions = {}): Promise<BrokerProcess> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'takhin-it-'));
  let out = '';
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'backend/src/main.ts'), '--port', String(port), '--data-dir', dataDir, ...(options.args ?? [])],
    { cwd: REPO_ROOT, env: { ...process.env, TAKHIN_LOG_LEVEL: 'warn', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));

  const deadline = Date.now() + BROKER_START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`broker exited with ${child.exitCode} before listening:\n${out}`);
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`broker did not listen on ${port} within ${BROKER_START_TIMEOUT_MS} ms:\n${out}`);
    }
    await sleep(100);
  }

  return {
    port,
    dataDir,
    bootstrap: `127.0.0.1:${port}`,
    child,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), BROKER_STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
    cleanup() {
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      ok(true);
    });
    s.once('error', () => ok(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((ok) => setTimeout(ok, ms));
}
