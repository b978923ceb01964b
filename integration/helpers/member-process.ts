// Runs helpers/group-member.ts in a child process and hands its JSON report lines to the test.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from './broker.ts';
import { withTimeout } from './groups.ts';

/** How long a member may take to leave the group and exit after "leave" (ms). */
const MEMBER_LEAVE_TIMEOUT_MS = 20_000;

export interface MemberProcess {
  /** Resolves when the process has exited (for any reason). */
  exited: Promise<number | null>;
  /** What the process wrote on stderr, for failure messages. */
  stderr(): string;
  /** Leave the group and exit (graceful). */
  leave(): Promise<void>;
  /** SIGKILL, then wait for the exit. */
  kill(): Promise<void>;
}

/** Starts `group-member.ts <args>`; `onReport` gets every JSON line it prints, in order. */
export function spawnMember(args: string[], onReport: (report: Record<string, unknown>) => void): MemberProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'integration/helpers/group-member.ts'), ...args],
    { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let report: Record<string, unknown>;
    try {
      report = JSON.parse(line) as Record<string, unknown>;
    } catch {
      report = { error: `unreadable report line: ${line}` };
    }
    onReport(report);
  });
  return {
    exited,
    stderr: () => stderr,
    async leave() {
      child.stdin!.end('leave\n');
      await withTimeout(exited, MEMBER_LEAVE_TIMEOUT_MS, 'the member leaving');
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
