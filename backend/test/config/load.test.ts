import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ConfigError, configHelp, loadConfig, parseCommandLine, topicDefaults } from '../../src/config/load.ts';
import { argName, envName, settingNames } from '../../src/config/schema.ts';
import { DEFAULT_LOG_CONFIG } from '../../src/log/log-config.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'takhin-config-'));
let files = 0;
test.after.always(() => fs.rmSync(dir, { recursive: true, force: true }));

function tempFile(content: string): string {
  const file = path.join(dir, `config-${files++}.json`);
  fs.writeFileSync(file, content);
  return file;
}

function configError(t: import('ava').ExecutionContext, fn: () => unknown): string {
  const err = t.throws(fn, { instanceOf: ConfigError });
  return err?.message ?? '';
}

test('defaults: configs/dev.json over the schema defaults', (t) => {
  const c = loadConfig({ argv: [], env: {} });
  t.deepEqual(c.hosts, ['127.0.0.1', '::1']);
  t.is(c.port, 9092);
  t.is(c.dataDir, './data');
  t.is(c.autoCreateTopics, true);
  t.is(c.logLevel, 'info');
  t.is(c.requestBytesMax, 100 * 1024 * 1024);
  t.deepEqual(topicDefaults(c), DEFAULT_LOG_CONFIG);
});

test('without dev.json the schema defaults apply', (t) => {
  const c = loadConfig({ argv: [], env: {}, defaultsFile: null });
  t.deepEqual(c.hosts, ['127.0.0.1']);
  t.is(c.port, 9092);
});

test('TAKHIN_PORT and TAKHIN_DATA_DIR override the defaults', (t) => {
  const c = loadConfig({
    argv: [],
    env: { TAKHIN_PORT: '19092', TAKHIN_DATA_DIR: '/tmp/x', TAKHIN_HOSTS: '127.0.0.1, ::1', TAKHIN_AUTO_CREATE_TOPICS: 'false',
      TAKHIN_LOG_RETENTION_MS: '-1', PATH: '/bin' },
  });
  t.is(c.port, 19092);
  t.is(c.dataDir, '/tmp/x');
  t.deepEqual(c.hosts, ['127.0.0.1', '::1']);
  t.is(c.autoCreateTopics, false);
  t.is(c.logRetentionMs, -1);
});

test('flags override env, both forms of a flag work', (t) => {
  const c = loadConfig({
    argv: ['--port', '19093', '--data-dir=/tmp/y', '--log-segment-bytes', '1048576', '--auto-create-topics', '--node-id', '3'],
    env: { TAKHIN_PORT: '19092', TAKHIN_AUTO_CREATE_TOPICS: 'false' },
  });
  t.is(c.port, 19093);
  t.is(c.dataDir, '/tmp/y');
  t.is(c.logSegmentBytes, 1048576);
  t.is(c.autoCreateTopics, true);
  t.is(c.nodeId, 3);
  t.is(topicDefaults(c).segmentBytes, 1048576);
});

test('--config FILE overrides dev.json and is overridden by env and flags', (t) => {
  const file = tempFile(JSON.stringify({ port: 29092, dataDir: '/tmp/file', logLevel: 'debug', hosts: ['::1'] }));
  const fromFile = loadConfig({ argv: ['--config', file], env: {} });
  t.is(fromFile.port, 29092);
  t.is(fromFile.dataDir, '/tmp/file');
  t.is(fromFile.logLevel, 'debug');
  t.deepEqual(fromFile.hosts, ['::1']);
  t.is(fromFile.autoCreateTopics, true, 'dev.json values not in the file remain');

  const over = loadConfig({ argv: [`--config=${file}`, '--port', '1'], env: { TAKHIN_DATA_DIR: '/tmp/env', TAKHIN_PORT: '2' } });
  t.is(over.port, 1);
  t.is(over.dataDir, '/tmp/env');

  const viaEnv = loadConfig({ argv: [], env: { TAKHIN_CONFIG: file } });
  t.is(viaEnv.port, 29092);
});

test('bad values are refused with the setting named', (t) => {
  t.regex(configError(t, () => loadConfig({ argv: ['--port', 'abc'], env: {} })), /port: .*TAKHIN_PORT.*--port/);
  t.regex(configError(t, () => loadConfig({ argv: ['--port', '19092x'], env: {} })), /port: must be an integer/);
  t.regex(configError(t, () => loadConfig({ argv: [], env: { TAKHIN_PORT: '70000' } })), /port: must be an integer from 0 to 65535/);
  t.regex(configError(t, () => loadConfig({ argv: ['--in-flight-requests-max', '0'], env: {} })), /inFlightRequestsMax/);
  t.regex(configError(t, () => loadConfig({ argv: ['--log-retention-ms', '-2'], env: {} })), /logRetentionMs/);
  t.regex(configError(t, () => loadConfig({ argv: ['--log-flush-interval-ms', '0'], env: {} })), /logFlushIntervalMs: must not be 0/);
  t.regex(configError(t, () => loadConfig({ argv: [], env: { TAKHIN_AUTO_CREATE_TOPICS: 'yes' } })), /autoCreateTopics: must be true or false/);
  t.regex(configError(t, () => loadConfig({ argv: ['--log-level', 'loud'], env: {} })), /logLevel: must be one of/);
  t.regex(configError(t, () => loadConfig({ argv: ['--hosts', '127.0.0.1,not a host'], env: {} })), /hosts: "not a host"/);
  t.regex(configError(t, () => loadConfig({ argv: ['--log-message-timestamp-type', 'Now'], env: {} })), /logMessageTimestampType/);
  t.regex(configError(t, () => loadConfig({ argv: ['--data-dir', ''], env: {} })), /dataDir: must be a non-empty string/);
});

test('a file with a wrong type, an unknown key or bad JSON is refused by name', (t) => {
  t.regex(configError(t, () => loadConfig({ argv: ['--config', tempFile('{"port": true}')], env: {} })), /port: must be an integer/);
  t.regex(configError(t, () => loadConfig({ argv: ['--config', tempFile('{"prot": 1}')], env: {} })), /'prot' not declared/);
  t.regex(configError(t, () => loadConfig({ argv: ['--config', tempFile('{"port": ')], env: {} })), /not valid JSON/);
  t.regex(configError(t, () => loadConfig({ argv: ['--config', tempFile('[1]')], env: {} })), /JSON object/);
  t.regex(configError(t, () => loadConfig({ argv: ['--config', '/nonexistent/x.json'], env: {} })), /cannot read config file/);
});

test('unknown flags, stray arguments and unknown TAKHIN_ variables are refused', (t) => {
  t.regex(configError(t, () => loadConfig({ argv: ['--prot', '1'], env: {} })), /unknown flag --prot/);
  t.regex(configError(t, () => loadConfig({ argv: ['9092'], env: {} })), /unexpected argument/);
  t.regex(configError(t, () => loadConfig({ argv: ['--port'], env: {} })), /--port needs a value/);
  t.regex(configError(t, () => loadConfig({ argv: [], env: { TAKHIN_PROT: '1' } })), /TAKHIN_PROT/);
});

test('every setting has an env name, a flag and a documented unit or meaning', (t) => {
  const names = settingNames();
  t.true(names.length >= 35);
  t.is(new Set(names.map(envName)).size, names.length);
  t.is(envName('dataDir'), 'TAKHIN_DATA_DIR');
  t.is(argName('dataDir'), 'data-dir');
  t.is(envName('logIndexSizeMaxBytes'), 'TAKHIN_LOG_INDEX_SIZE_MAX_BYTES');
  const help = configHelp();
  for (const name of names) t.true(help.includes(`--${argName(name)}  (${envName(name)}`), name);
  t.true(parseCommandLine(['--help']).help);
});
