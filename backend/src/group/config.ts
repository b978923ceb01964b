// Settings of the classic group coordinator, named after Kafka's broker configs (group.min.session.timeout.ms
// -> groupMinSessionTimeoutMs). Each comment gives the unit and what 0 means where it matters.

export interface GroupConfig {
  /** group.min.session.timeout.ms: a JoinGroup asking for a shorter session gets INVALID_SESSION_TIMEOUT (ms). */
  groupMinSessionTimeoutMs: number;
  /** group.max.session.timeout.ms: a JoinGroup asking for a longer session gets INVALID_SESSION_TIMEOUT (ms). */
  groupMaxSessionTimeoutMs: number;
  /**
   * group.initial.rebalance.delay.ms: when the first member joins an empty group, wait this long (and again
   * while more members keep arriving, up to the rebalance timeout) before the first generation is formed, so
   * a fleet of consumers starting together forms one generation instead of many (ms). 0: no delay (dev).
   */
  groupInitialRebalanceDelayMs: number;
  /** group.max.size: members one group may have; a join beyond it gets GROUP_MAX_SIZE_REACHED (count). */
  groupMaxSize: number;
  /**
   * How long a new member's JoinGroup may wait for the rebalance before the member is dropped (ms). Kafka
   * fixes this at 5 minutes: a new member cannot heartbeat, so this is what removes members that went away.
   */
  groupNewMemberJoinTimeoutMs: number;
  /**
   * How long a group with no members keeps its in-memory state (generation id, protocol type) before it is
   * forgotten (ms); its committed offsets stay in the backend and keep it listed. 0: forget at once.
   */
  groupEmptyRetentionMs: number;
  /** Longest group id accepted (UTF-8 bytes); longer ones get INVALID_GROUP_ID. */
  groupIdBytesMax: number;
  /** offset.metadata.max.bytes: longest metadata string of a committed offset (UTF-8 bytes). */
  offsetMetadataBytesMax: number;
}

/** Kafka's defaults, except groupMaxSize (Kafka: unlimited) and the limits Kafka does not have. */
export const DEFAULT_GROUP_CONFIG: Readonly<GroupConfig> = Object.freeze({
  groupMinSessionTimeoutMs: 6_000,
  groupMaxSessionTimeoutMs: 1_800_000,
  groupInitialRebalanceDelayMs: 3_000,
  groupMaxSize: 1_000,
  groupNewMemberJoinTimeoutMs: 300_000,
  groupEmptyRetentionMs: 600_000,
  groupIdBytesMax: 1_024,
  offsetMetadataBytesMax: 4_096,
});

/** Throws on settings that would make the coordinator misbehave (a programmer or operator error at startup). */
export function checkGroupConfig(config: GroupConfig): void {
  for (const [name, value] of Object.entries(config)) {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`group setting ${name} must be an integer >= 0, got ${value}`);
  }
  if (config.groupMinSessionTimeoutMs > config.groupMaxSessionTimeoutMs) {
    throw new Error('groupMinSessionTimeoutMs must not exceed groupMaxSessionTimeoutMs');
  }
  if (config.groupMaxSize < 1) throw new Error('groupMaxSize must be at least 1');
}
