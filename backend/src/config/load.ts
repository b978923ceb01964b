// Loading order, later wins: schema defaults < configs/dev.json (the embedded default) < --config FILE <
// environment TAKHIN_* < command-line flags. Anything wrong (bad type, out of range, unknown key, unknown flag or
// TAKHIN_* variable) is a ConfigError naming the setting; main prints it and exits 1.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import convict from 'convict';
import type { LogConfig } from '../log/log-config.ts';
import { argName, configSchema, envName, settingDoc, settingNames } from './schema.ts';
import type { SettingName, TakhinConfig } from './schema.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const DEV_CONFIG_PATH = fileURLToPath(new URL('../../../configs/dev.json', import.meta.url));
/** Env variable naming a config file, the same as --config. */
export const CONFIG_FILE_ENV = 'TAKHIN_CONFIG';

export interface CommandLine {
  configFile: string | null;
  help: boolean;
  /** Raw flag values by setting, in the order given (a repeated flag: the last wins). */
  settings: Map<SettingName, string>;
}

export interface LoadConfigInput {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  /** The embedded default file; null: schema defaults only. */
  defaultsFile?: string | null;
}

const BY_ARG = new Map<string, SettingName>(settingNames().map((n) => [argName(n), n]));
const BY_ENV = new Map<string, SettingName>(settingNames().map((n) => [envName(n), n]));

function isBooleanSetting(name: SettingName): boolean {
  return typeof settingDoc(name).default === 'boolean';
}

/** Flags: --name value, --name=value; a boolean flag alone means true (--auto-create-topics). */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const out: CommandLine = { configFile: null, help: false, settings: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)} (flags look like --port 9092)`);
    const eq = arg.indexOf('=');
    const flag = arg.slice(2, eq < 0 ? undefined : eq);
    let value: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    const name = BY_ARG.get(flag);
    if (flag !== 'config' && name === undefined) throw new ConfigError(`unknown flag --${flag} (see --help)`);
    if (value === undefined) {
      const next = argv[i + 1];
      if (name !== undefined && isBooleanSetting(name)) {
        // A boolean flag takes the next word only when it is a boolean, so "--auto-create-topics --port 1" works.
        if (next === 'true' || next === 'false') value = argv[++i];
        else value = 'true';
      } else {
        if (next === undefined) throw new ConfigError(`flag --${flag} needs a value`);
        value = argv[++i];
      }
    }
    if (name === undefined) out.configFile = value!;
    else out.settings.set(name, value!);
  }
  return out;
}

function readJsonFile(path: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${what} ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${what} ${path} must hold a JSON object of settings`);
  }
  return parsed as Record<string, unknown>;
}

function checkEnv(env: LoadConfigInput['env']): void {
  for (const key of Object.keys(env)) {
    if (key.startsWith('TAKHIN_') && key !== CONFIG_FILE_ENV && !BY_ENV.has(key)) {
      throw new ConfigError(`unknown environment variable ${key} (see --help for the TAKHIN_* settings)`);
    }
  }
}

/** convict reports "name: problem: value was X" per line; add where each setting can be set. */
function describeErrors(message: string): string {
  const lines = message.split('\n').map((line) => {
    const match = /^(?:configuration param ')?([A-Za-z0-9]+)/.exec(line);
    const name = match?.[1] as SettingName | undefined;
    if (name !== undefined && settingNames().includes(name)) {
      return `  ${line} (file key ${name}, env ${envName(name)}, flag --${argName(name)})`;
    }
    return `  ${line}`;
  });
  return `invalid configuration:\n${lines.join('\n')}`;
}

export function loadConfig(input: LoadConfigInput): TakhinConfig {
  const commandLine = parseCommandLine(input.argv);
  checkEnv(input.env);
  // convict copies env into the config itself; it must never look at the real process.argv.
  const config = convict<TakhinConfig>(configSchema(), { env: input.env as NodeJS.ProcessEnv, args: [] });
  try {
    const defaultsFile = input.defaultsFile === undefined ? DEV_CONFIG_PATH : input.defaultsFile;
    if (defaultsFile !== null) config.load(readJsonFile(defaultsFile, 'default config file'));
    const userFile = commandLine.configFile ?? input.env[CONFIG_FILE_ENV] ?? null;
    if (userFile !== null) config.load(readJsonFile(userFile, 'config file'));
    for (const [name, value] of commandLine.settings) config.set(name, value);
    config.validate({ allowed: 'strict' });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(describeErrors((err as Error).message));
  }
  return config.getProperties();
}

/** The broker-wide topic defaults, as the log layer wants them. */
export function topicDefaults(c: TakhinConfig): LogConfig {
  return {
    segmentBytes: c.logSegmentBytes,
    segmentMs: c.logRollMs,
    retentionMs: c.logRetentionMs,
    retentionBytes: c.logRetentionBytes,
    maxMessageBytes: c.messageMaxBytes,
    indexIntervalBytes: c.logIndexIntervalBytes,
    segmentIndexBytes: c.logIndexSizeMaxBytes,
    flushMessages: c.logFlushIntervalMessages,
    flushMs: c.logFlushIntervalMs,
    messageTimestampType: c.logMessageTimestampType,
    fileDeleteDelayMs: c.fileDeleteDelayMs,
  };
}

/** The storage and topic settings both backends take (DirectBackendOptions and the Raft node's share them). */
export function storageSettings(c: TakhinConfig) {
  return {
    rack: c.rack === '' ? null : c.rack,
    autoCreateTopics: c.autoCreateTopics,
    defaultPartitions: c.numPartitions,
    defaultReplicationFactor: c.defaultReplicationFactor,
    topicDefaults: topicDefaults(c),
    retentionCheckIntervalMs: c.logRetentionCheckIntervalMs,
    offsetsRetentionMs: c.offsetsRetentionMs,
    offsetsRetentionCheckIntervalMs: c.offsetsRetentionCheckIntervalMs,
    offsetMetadataBytesMax: c.offsetMetadataBytesMax,
    partitionsPerTopicMax: c.partitionsPerTopicMax,
    partitionsPerBrokerMax: c.partitionsPerBrokerMax,
  };
}

/** --help text: every setting with its flag, env variable, default and meaning. */
export function configHelp(): string {
  const lines = [
    'Usage: takhin [--config FILE] [--<setting> VALUE ...]',
    '',
    `Settings load in this order, later wins: built-in defaults, ${DEV_CONFIG_PATH},`,
    `--config FILE (or ${CONFIG_FILE_ENV}), environment variables, flags.`,
    '',
  ];
  for (const name of settingNames()) {
    const setting = settingDoc(name);
    lines.push(`--${argName(name)}  (${envName(name)}, file key ${name}, default ${JSON.stringify(setting.default)})`);
    lines.push(`    ${setting.doc}`);
  }
  return lines.join('\n');
}
