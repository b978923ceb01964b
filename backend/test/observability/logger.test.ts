import { Writable } from 'node:stream';
import test from 'ava';
import { createLogger } from '../../src/observability/logger.ts';

function sink(): { stream: Writable & { write(s: string): boolean }; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

test('json: one object per line, level from config, child bindings kept', (t) => {
  const out = sink();
  const log = createLogger({ level: 'info', format: 'json', destination: out.stream });
  log.debug('hidden');
  log.child({ component: 'server' }).child({ conn: 7 }).warn({ remote: '127.0.0.1:1' }, 'hello');
  log.error({ err: new Error('bad') }, 'failed');
  const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(lines.length, 2);
  t.like(lines[0], { level: 40, component: 'server', conn: 7, remote: '127.0.0.1:1', msg: 'hello' });
  t.regex(String((lines[1]!.err as { stack: string }).stack), /Error: bad\n\s+at /);
});

test('pretty: human-readable lines, not JSON', async (t) => {
  const out = sink();
  const log = createLogger({ level: 'debug', format: 'pretty', destination: out.stream });
  log.info({ port: 9092 }, 'listening');
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.regex(out.text(), /INFO.*listening/);
  t.regex(out.text(), /port: 9092/);
  t.throws(() => JSON.parse(out.text()));
});
