import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { LOG_START_CHECKPOINT_FILE, readLogStartCheckpoint, writeLogStartCheckpoint } from '../../src/log/checkpoint.ts';
import { tempDir } from './_helpers.ts';

test('write then read; rewriting replaces the value and leaves no temp file', async (t) => {
  const dir = tempDir();
  t.is(readLogStartCheckpoint(dir), null);
  await writeLogStartCheckpoint(dir, 42);
  t.is(readLogStartCheckpoint(dir), 42);
  await writeLogStartCheckpoint(dir, 2 ** 40);
  t.is(readLogStartCheckpoint(dir), 2 ** 40);
  t.deepEqual(fs.readdirSync(dir), [LOG_START_CHECKPOINT_FILE]);
});

test('a malformed checkpoint is an error, not a silent 0', (t) => {
  const dir = tempDir();
  for (const text of ['', 'garbage', '1\n5\n', '0\n-3\n', '0\n\n', '0\n1.5\n']) {
    fs.writeFileSync(path.join(dir, LOG_START_CHECKPOINT_FILE), text);
    t.throws(() => readLogStartCheckpoint(dir), { message: /malformed/ }, JSON.stringify(text));
  }
});
